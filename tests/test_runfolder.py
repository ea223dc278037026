"""The run folder's files as a reader (the dashboard) sees them."""
import json

from core import atomic
from core.runs.runfolder import RunFolder


def test_atomic_write_replaces_whole_file_and_leaves_no_temp(tmp_path):
    target = tmp_path / "status.json"
    atomic.write_json(target, {"state": "running"})
    atomic.write_json(target, {"state": "stopped"})
    assert json.loads(target.read_text()) == {"state": "stopped"}
    assert [p.name for p in tmp_path.iterdir()] == ["status.json"]


def test_failed_write_keeps_the_old_file(tmp_path):
    target = tmp_path / "config.json"
    atomic.write_json(target, {"a": 1})
    try:
        atomic.write_json(target, {"bad": object()})
    except TypeError:
        pass
    assert json.loads(target.read_text()) == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["config.json"]


def test_metrics_reader_ignores_a_partial_last_line_and_truncation(tmp_path):
    run = RunFolder(tmp_path)
    for step in (10, 20, 30):
        run.append_metrics({"step": step})
    with open(run.metrics_file, "a") as f:
        f.write('{"step": 4')  # a line being written right now
    assert [r["step"] for r in run.read_metrics()] == [10, 20, 30]
    assert run.truncate_metrics(20) == 1
    assert [r["step"] for r in run.read_metrics()] == [10, 20]
