"""Hostile files and killed processes around runs: nothing saved is lost, nothing foreign gets in."""
import json
import os
import resource
import signal
import subprocess
import sys
import time

import pytest
from conftest import REPO, TINY, read_json, read_jsonl, run_trainer, train_cmd, wait_for

from core import checkpoint
from core.runs.registry import Registry, RunError, trainer_args
from core.runs.runfolder import RunFolder


@pytest.fixture
def stopped_run(tmp_path, image_folder):
    """A tiny run, finished after 30 steps, with a metrics line every 10 and latest.pt."""
    run = tmp_path / "run"
    result = run_trainer("--data", image_folder, "--out", run, *TINY, "--kimg", "0.24")
    assert result.returncode == 0, result.stderr
    return run


def test_a_hostile_config_key_never_becomes_an_option(stopped_run, tmp_path):
    config = read_json(stopped_run / "config.json")
    (stopped_run / "config.json").write_text(json.dumps({**config, "out=/elsewhere": True, "kimg": 0.32}))
    with pytest.raises(RunError, match="unknown trainer settings"):
        trainer_args({"out=/elsewhere": True})
    registry = Registry(tmp_path)
    registry.resume("run")
    wait_for(lambda: registry.get("run").state == "finished", what="the resumed run")
    assert read_json(stopped_run / "status.json")["step"] == 40
    assert not (tmp_path / "elsewhere").exists() and not os.path.exists("/elsewhere")


def test_run_files_of_the_wrong_kind_are_listed_not_fatal(stopped_run, tmp_path, monkeypatch):
    """status.json / config.json holding JSON that is not an object, a latest.pt full of pickled
    objects, a config asking for 10,000 processes: the run is listed and cannot crash the app."""
    import pathlib

    import torch
    latest = stopped_run / "checkpoints" / "latest.pt"
    good = latest.read_bytes()
    torch.save({"weights": pathlib.PurePosixPath("x")}, latest)  # needs full unpickling: refused
    registry = Registry(tmp_path)
    run = registry.get("run")
    assert run.state == "finished" and not run.resumable
    latest.write_bytes(good)
    config = read_json(stopped_run / "config.json")
    (stopped_run / "config.json").write_text(json.dumps({**config, "kimg": 0.32,
                                                          "runtime": {**config["runtime"], "world_size": 10000}}))
    registry.resume("run")  # as one process, not ten thousand
    wait_for(lambda: registry.get("run").state == "finished", what="the resumed run")
    assert read_json(stopped_run / "status.json")["step"] == 40
    for text in ("[1, 2]", '"running"', "null"):
        (stopped_run / "status.json").write_text(text)
        (stopped_run / "config.json").write_text(text)
        [run] = registry.runs()
        assert run.name == "run" and run.status == {} and run.config == {}
    (stopped_run / "status.json").write_text(json.dumps({"state": "finished", "step": "x", "kimg": [1],
                                                         "updated_at": "soon", "pid": "1; rm -rf /"}))
    assert registry.get("run").status == {"state": "finished"}
    from streamlit.testing.v1 import AppTest
    monkeypatch.setenv("GANSCOPE_CHECKPOINTS", str(tmp_path))
    at = AppTest.from_file(str(REPO / "Home.py"), default_timeout=60).run()
    assert not at.exception and "run=run" in str(at.dataframe[0].value)


HOSTILE_SPECS = [({"channels": 10**9}, "channels must be a whole number from 4 to 512"), ({"z_dim": -3}, "z_dim must be"),
                 ({"res": 4096}, "resolution must be"), ({"arch": "../../x"}, "unknown architecture"),
                 ({"channels": None}, "channels"), ({"feature_res": 10**6}, "feature resolution must be")]


@pytest.mark.parametrize("spec, text", HOSTILE_SPECS)
def test_a_checkpoint_with_a_hostile_model_spec_is_refused(stopped_run, tmp_path, spec, text):
    ck = checkpoint.load(stopped_run / "checkpoints" / "latest.pt")
    checkpoint.save(tmp_path / "evil.pt", {**ck, "model": {**ck["model"], **spec}})
    with pytest.raises(ValueError, match=text):
        checkpoint.load_generator(tmp_path / "evil.pt")


def test_a_metrics_line_cut_mid_write_is_repaired_on_resume(stopped_run):
    metrics = stopped_run / "metrics.jsonl"
    text = metrics.read_text()
    metrics.write_text(text[:-25])  # the last line cut short, no newline: a crash mid-append
    assert [r["step"] for r in RunFolder(stopped_run).read_metrics()] == [10, 20]
    result = run_trainer("--out", stopped_run, "--resume", "--kimg", "0.4")
    assert result.returncode == 0, result.stderr
    lines = metrics.read_text().split("\n")  # the cut line is lost, and nothing is glued to it
    assert [json.loads(line)["step"] for line in lines[:-1]] == [10, 20, 40, 50]
    metrics.write_text("{not json\n" + metrics.read_text())  # readers skip what doesn't parse
    assert [r["step"] for r in RunFolder(stopped_run).read_metrics()] == [10, 20, 40, 50]


def test_temp_files_left_by_a_kill_are_removed_on_resume(stopped_run):
    leftovers = [stopped_run / ".status.json.k1.tmp", stopped_run / "checkpoints" / ".latest.pt.k2.tmp",
                 stopped_run / "samples" / ".step-00000010.png.k3.tmp"]
    apps = [stopped_run / ".notes.md.k4.tmp", stopped_run / "evals" / ".quiz.json.k5.tmp"]  # maybe mid-write
    for path in leftovers + apps:
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(b"half a file")
    result = run_trainer("--out", stopped_run, "--resume", "--kimg", "0.32")
    assert result.returncode == 0, result.stderr
    assert not any(p.exists() for p in leftovers)
    assert all(p.exists() for p in apps)  # the app's own writes are not the trainer's to remove


def test_sigterm_during_start_up_stops_cleanly(tmp_path, image_folder):
    run = tmp_path / "run"
    proc = subprocess.Popen(train_cmd("--data", image_folder, "--out", run, *TINY, "--kimg", "10"), cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    time.sleep(0.15)  # Python has started; torch is far from imported
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=120) == 0, proc.stderr.read()
    assert read_json(run / "status.json")["state"] == "stopped"


def test_a_live_trainer_holds_its_folder_even_when_its_status_goes_stale(tmp_path):
    """A full disk stops heartbeat writes; the run lock still tells the app the trainer lives."""
    run = RunFolder(tmp_path / "busy")
    run.create()
    run.write_config({"data": "x"})
    (run.status_file).write_text(json.dumps({"state": "running", "pid": 1, "heartbeat": time.time() - 3600,
                                             "started_at": 0, "updated_at": 0}))
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time; from core.runs.runfolder import RunLock; "
                               "from pathlib import Path; assert RunLock(Path(sys.argv[1])).acquire(); "
                               "print('held', flush=True); time.sleep(60)", str(run.lock_file)],
                              cwd=REPO, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        registry = Registry(tmp_path)
        shown = registry.get("busy")
        assert shown.state == "running" and run.silent_for(shown.status) > 3000
        for action in (lambda: registry.delete("busy"), lambda: registry.resume("busy"),
                       lambda: registry.rename("busy", "other")):
            with pytest.raises(RunError):
                action()
        assert run.config_file.exists()
    finally:
        holder.kill()
        holder.wait()
    assert Registry(tmp_path).get("busy").state == "crashed"  # the lock went with the process


def _no_big_files(limit: int):
    def limit_file_size():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a too-large write fails with EFBIG instead
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return limit_file_size


def test_a_full_disk_fails_with_its_reason_and_keeps_the_last_checkpoint(stopped_run):
    latest = stopped_run / "checkpoints" / "latest.pt"
    before = latest.read_bytes()
    assert len(before) > 200_000  # larger than anything else the run writes
    result = subprocess.run(train_cmd("--out", stopped_run, "--resume", "--kimg", "0.4"), cwd=REPO,
                            capture_output=True, text=True, timeout=180, preexec_fn=_no_big_files(len(before) // 2))
    assert result.returncode == 1
    status = read_json(stopped_run / "status.json")
    assert status["state"] == "failed" and status["message"].startswith("disk full")
    assert latest.read_bytes() == before and not list(stopped_run.rglob(".*.tmp"))
    assert checkpoint.load(latest)["counters"]["step"] == 30


def test_old_snapshots_are_pruned(tmp_path, image_folder):
    run = tmp_path / "run"
    result = run_trainer("--data", image_folder, "--out", run, *TINY, "--kimg", "0.4", "--snapshot-kimg", "0.08",
                         "--keep-snapshots", "2", "--no-health")  # (health spares some: test_health)
    assert result.returncode == 0, result.stderr
    assert RunFolder(run).snapshot_steps() == [40, 50]
    assert len(read_jsonl(run / "metrics.jsonl")) == 5


def test_options_are_checked_without_torch():
    """The trainer checks options and claims its folder before importing torch (fast refusals)."""
    code = ("import sys; from core.training.config import resolve; from core.runs.runfolder import RunFolder; "
            "resolve({}); print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_notes_saved_in_another_tab_are_not_overwritten(tmp_path):
    run = RunFolder(tmp_path / "noted")
    run.create()
    run.write_config({"data": "x"})
    registry = Registry(tmp_path)
    loaded = registry.notes("noted")
    registry.set_notes("noted", "from tab A", loaded)
    with pytest.raises(RunError, match="changed elsewhere"):
        registry.set_notes("noted", "from tab B", loaded)  # tab B opened before A saved
    assert registry.notes("noted") == "from tab A"
    registry.set_notes("noted", "from tab B, merged", registry.notes("noted"))
    assert registry.notes("noted") == "from tab B, merged"


def test_the_cache_keeps_to_its_limit_dropping_the_least_recently_used(tmp_path, monkeypatch):
    from core import cache
    monkeypatch.setenv("GANSCOPE_CACHE_GB", str(3000 / 2**30))  # 3,000 bytes
    folder = tmp_path / "cache" / "features"
    folder.mkdir(parents=True)
    for i, name in enumerate(["old", "used", "new"]):
        (folder / f"{name}.npy").write_bytes(b"x" * 1200)
        os.utime(folder / f"{name}.npy", (1000 + i, 1000 + i))
    cache.touch(folder / "used.npy")  # a hit makes it the most recent
    assert [p.name for p in cache.prune(keep=folder / "new.npy")] == ["old.npy"]
    assert cache.size_bytes() == 2400
