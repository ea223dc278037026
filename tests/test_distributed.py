"""Data-parallel training: 2 real processes under torchrun (gloo on CPU) write one ordinary run folder."""
import socket
import subprocess
import sys

from conftest import REPO, read_json, read_jsonl, run_trainer

TINY = ["--res", "32", "--batch", "8", "--channels", "8", "--log-every", "5", "--device", "cpu",
        "--threads", "1", "--recipe", "small-data"]


def torchrun(*args, nproc=2, timeout=240) -> subprocess.CompletedProcess:
    with socket.socket() as s:  # a free port on the loopback interface for the rendezvous
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "1", "--nproc_per_node", str(nproc),
           "--master_addr", "127.0.0.1", "--master_port", str(port), "-m", "core.train", *map(str, args)]
    return subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=timeout)


def tree(run):
    return sorted(p.relative_to(run).as_posix() for p in run.rglob("*") if p.is_file())


def test_two_processes_train_in_sync_and_write_a_normal_run_folder(image_folder, tmp_path):
    single, multi = tmp_path / "single", tmp_path / "multi"
    assert run_trainer("--data", image_folder, "--out", single, *TINY, "--kimg", "0.1").returncode == 0
    result = torchrun("--data", image_folder, "--out", multi, *TINY, "--kimg", "0.1")
    assert result.returncode == 0, result.stderr[-3000:]

    assert tree(multi) == tree(single)  # the same files: the dashboard needs nothing new
    status = read_json(multi / "status.json")
    assert status["state"] == "finished" and status["world_size"] == 2 and status["replicas_in_sync"] is True
    assert status["step"] == read_json(single / "status.json")["step"]  # global batch 8 = 2 x 4
    rows = read_jsonl(multi / "metrics.jsonl")
    assert [r["step"] for r in rows] == [r["step"] for r in read_jsonl(single / "metrics.jsonl")]
    assert set(rows[0]) == set(read_jsonl(single / "metrics.jsonl")[0])
    assert read_json(multi / "config.json")["runtime"]["world_size"] == 2
    log = (multi / "train.log").read_text()
    assert "2 processes; replicas in sync" in log and log.count("training from step 0") == 1  # rank 0 only

    # Resumed with 2 processes: the counters and metric lines continue with no gap or repeat.
    result = torchrun("--out", multi, "--resume", "--kimg", "0.2", "--device", "cpu", "--threads", "1")
    assert result.returncode == 0, result.stderr[-3000:]
    steps = [r["step"] for r in read_jsonl(multi / "metrics.jsonl")]
    assert steps == sorted(set(steps)) and steps[-1] == read_json(multi / "status.json")["step"] == 25
    assert read_json(multi / "status.json")["replicas_in_sync"] is True


def test_a_batch_that_does_not_split_over_the_processes_is_refused(image_folder, tmp_path):
    result = torchrun("--data", image_folder, "--out", tmp_path / "odd", *TINY[:2], "--batch", "7",
                      *TINY[4:], "--kimg", "0.1")
    assert result.returncode != 0
    status = read_json(tmp_path / "odd" / "status.json")
    assert status["state"] == "failed" and "divisible by the 2 processes" in status["message"]
