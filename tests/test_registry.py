"""The run registry with real trainer processes: launch, stop, resume, crash, queue, housekeeping."""
import os
import signal

import pytest
from conftest import make_images, read_jsonl, wait_for

from core.runs.registry import Registry, RunError, trainer_args, validate_name
from core.runs.runfolder import MetricsTail

TINY_OPTIONS = {"recipe": "small-data", "res": 32, "batch": 8, "channels": 8, "log_every": 5,
                "sample_kimg": 0.2, "snapshot_kimg": 10, "threads": 1}


@pytest.fixture
def registry(tmp_path):
    reg = Registry(tmp_path / "checkpoints")
    yield reg
    for run in reg.runs():  # never leave a trainer behind
        if run.active:
            reg.stop(run.name, timeout=20)


@pytest.fixture
def data(tmp_path):
    return str(make_images(tmp_path / "images", 12))


def _state(reg, name):
    return reg.get(name).state


def test_launch_run_stop_resume(registry, data):
    run = registry.start("first", {"data": data, "kimg": 1000, **TINY_OPTIONS})
    assert run.state == "starting" and run.status["pid"] > 0
    wait_for(lambda: _state(registry, "first") == "running", what="running")
    metrics = registry.get("first").folder.metrics_file
    wait_for(lambda: metrics.exists() and len(read_jsonl(metrics)) >= 2, what="metric lines")

    stopped = registry.stop("first")
    assert stopped.state == "stopped" and stopped.folder.latest.exists()
    step = stopped.status["step"]
    assert registry.runs()[0].name == "first"

    registry.resume("first")
    wait_for(lambda: registry.get("first").status.get("step", 0) > step + 5, what="progress after resume")
    assert registry.stop("first").state == "stopped"
    steps = [r["step"] for r in read_jsonl(metrics)]
    assert steps == sorted(set(steps))
    log = registry.get("first").folder.log_file.read_text()
    assert log.count("$ -m core.train") == 2 and log.count("INFO step 5 ") == 1  # one copy of each line


def test_killed_trainer_shows_as_crashed_and_resumes(registry, data):
    registry.start("doomed", {"data": data, "kimg": 1000, **TINY_OPTIONS, "latest_minutes": 0})
    wait_for(lambda: registry.get("doomed").folder.latest.exists()
             and registry.get("doomed").status.get("step", 0) >= 10, what="a checkpoint")
    pid = registry.get("doomed").status["pid"]
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: _state(registry, "doomed") == "crashed", what="crashed")
    run = registry.get("doomed")
    assert run.status["state"] == "running" and run.resumable  # the file still says running

    registry.resume("doomed")
    wait_for(lambda: _state(registry, "doomed") == "running", what="running again")
    assert registry.get("doomed").status["pid"] != pid
    assert registry.stop("doomed").state == "stopped"


def test_device_lock_queues_the_second_run(registry, data):
    # On a GPU this is automatic; on CPU --device-lock on exercises the same queue.
    options = {"data": data, "kimg": 1000, **TINY_OPTIONS, "device_lock": "on"}
    registry.start("holder", options)
    wait_for(lambda: _state(registry, "holder") == "running", what="first running")
    registry.start("waiter", options)
    wait_for(lambda: _state(registry, "waiter") == "queued", what="second queued")
    assert "waiting for cpu" in registry.get("waiter").status["message"]
    registry.stop("holder")
    wait_for(lambda: _state(registry, "waiter") == "running", what="queued run starts")
    assert registry.stop("waiter").state == "stopped"


def test_stop_while_queued_and_restart_without_checkpoint(registry, data):
    options = {"data": data, "kimg": 0.08, **TINY_OPTIONS, "device_lock": "on"}
    registry.start("holder", {**options, "kimg": 1000})
    wait_for(lambda: _state(registry, "holder") == "running", what="first running")
    registry.start("waiter", options)
    wait_for(lambda: _state(registry, "waiter") == "queued", what="queued")
    assert registry.stop("waiter").state == "stopped"
    assert not registry.get("waiter").folder.latest.exists()
    registry.stop("holder")
    registry.resume("waiter")  # no checkpoint: starts again from its saved config
    wait_for(lambda: _state(registry, "waiter") == "finished", what="finished")


def test_names_cannot_escape_the_checkpoints_folder(registry, tmp_path):
    for bad in ["../evil", "a/b", "..", ".hidden", "", "x" * 65, "/etc", "a\\b"]:
        with pytest.raises(RunError):
            registry.start(bad, {})
    assert validate_name(" ok-name_1.2 ") == "ok-name_1.2"
    assert not (tmp_path / "evil").exists()


def test_delete_rename_notes(registry, data):
    registry.start("short", {"data": data, "kimg": 0.04, **TINY_OPTIONS})
    wait_for(lambda: _state(registry, "short") == "finished", what="finished")
    with pytest.raises(RunError, match="already exists"):
        registry.start("short", {"data": data})
    registry.set_notes("short", "baseline, 32 px")
    renamed = registry.rename("short", "baseline")
    assert renamed.state == "finished" and registry.notes("baseline") == "baseline, 32 px"
    with pytest.raises(RunError):
        registry.get("short")
    registry.delete("baseline")
    assert registry.runs() == []


def test_delete_refused_while_running(registry, data):
    registry.start("busy", {"data": data, "kimg": 1000, **TINY_OPTIONS})
    wait_for(lambda: _state(registry, "busy") == "running", what="running")
    with pytest.raises(RunError, match="stop it before deleting"):
        registry.delete("busy")
    with pytest.raises(RunError, match="stop it before renaming"):
        registry.rename("busy", "other")
    assert registry.get("busy").path.exists()


def test_trainer_args():
    assert trainer_args({"res": 64, "cond": True, "minutes": None, "out": "x", "aug_p": 0.2}) == \
        ["--res", "64", "--cond", "--aug-p", "0.2"]


def test_metrics_tail_reads_only_new_complete_lines(tmp_path):
    path = tmp_path / "metrics.jsonl"
    tail = MetricsTail(path)
    assert tail.read() == []
    path.write_text('{"step": 1}\n{"step": 2}\n{"step": 3')
    assert [r["step"] for r in tail.read()] == [1, 2]
    with open(path, "a") as f:
        f.write('}\n{"step": 4}\n')
    assert [r["step"] for r in tail.read()] == [1, 2, 3, 4]
    tmp = tmp_path / "new.jsonl"  # a resume rewrites the file atomically
    tmp.write_text('{"step": 1}\n')
    os.replace(tmp, path)
    assert [r["step"] for r in tail.read()] == [1]


def test_bad_launch_shows_failed_with_the_reason(registry, tmp_path):
    registry.start("nodata", {"data": str(tmp_path / "missing"), **TINY_OPTIONS})
    wait_for(lambda: _state(registry, "nodata") == "failed", what="failed")
    assert "data path not found" in registry.get("nodata").status["message"]
    registry.start("badopt", {"res": 48})
    wait_for(lambda: _state(registry, "badopt") == "failed", what="failed")
    assert "invalid choice" in registry.get("badopt").folder.log_file.read_text()


def test_stop_right_after_launch_ends_stopped(registry, data):
    # The trainer may still be importing torch, before its SIGTERM handler exists.
    registry.start("brief", {"data": data, "kimg": 1000, **TINY_OPTIONS})
    assert registry.stop("brief").state == "stopped"
    registry.resume("brief")  # and it can still be started again
    wait_for(lambda: _state(registry, "brief") == "running", what="running")
    assert registry.stop("brief").state == "stopped"


def test_a_linked_run_is_listed_and_deleting_removes_only_the_link(registry, data, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    registry.start("real", {"data": data, "kimg": 0.04, **TINY_OPTIONS})
    wait_for(lambda: _state(registry, "real") == "finished", what="finished")
    registry.get("real").path.rename(elsewhere)
    (registry.root / "linked").symlink_to(elsewhere)
    assert registry.get("linked").state == "finished"
    registry.delete("linked")
    assert elsewhere.exists() and not (registry.root / "linked").exists()


def test_an_exported_generator_is_explorable_but_not_resumable(registry):
    import shutil

    from conftest import REPO
    demo = REPO / "checkpoints" / "demo-emoji"
    if not (demo / "checkpoints" / "latest.pt").exists():
        pytest.skip("no demo run in this checkout")
    shutil.copytree(demo, registry.root / "demo-emoji")
    before = (registry.root / "demo-emoji" / "status.json").read_bytes()
    run = registry.get("demo-emoji")
    assert run.state == "finished" and not run.resumable
    with pytest.raises(RunError, match="exported generator"):
        registry.resume("demo-emoji")
    assert (registry.root / "demo-emoji" / "status.json").read_bytes() == before  # nothing changed


def test_a_data_parallel_run_starts_stops_and_resumes_through_the_registry(registry, data):
    """What "all GPUs" launches, here as 2 CPU processes (gloo): stop reaches every rank."""
    registry.start("ddp", {"data": data, **TINY_OPTIONS, "device": "cpu", "kimg": 50}, processes=2)
    wait_for(lambda: registry.get("ddp").status.get("step", 0) >= 10, timeout=120, what="2-process training")
    stopped = registry.stop("ddp", timeout=60)
    assert stopped.state == "stopped" and stopped.folder.latest.exists()
    assert stopped.config["runtime"]["world_size"] == 2 and stopped.status["replicas_in_sync"] is True
    step = stopped.status["step"]
    registry.resume("ddp", {"kimg": round(stopped.status["kimg"] + 0.1, 3)})
    wait_for(lambda: registry.get("ddp").state == "finished", timeout=120, what="resumed run to finish")
    finished = registry.get("ddp")
    assert finished.status["world_size"] == 2 and finished.status["step"] > step
    assert "torch.distributed.run" in finished.folder.log_file.read_text()  # relaunched with 2 processes
