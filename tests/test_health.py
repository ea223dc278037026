"""The health check on real tiny runs, each built to show one diagnosis (a learning rate that
diverges, three images that D memorises, a generator that collapses, one that stops learning),
no false alarm on a healthy run; health.json kept by the trainer through a resume; the CLI; the
Monitor's panel and Home's badge; the metrics CSV."""
import csv
import io
import json
import shutil
import subprocess
import sys
import time

import numpy as np
import pytest
from conftest import REPO, make_images, read_jsonl, run_trainer, shown
from streamlit.testing.v1 import AppTest

from core.grid import make_grid
from core.health import assess, grids, snapshots_to_spare
from core.health.rules import SEVERITIES
from core.runs.runfolder import RunFolder

# 32 px, a few channels, a grid every 25 steps: a few seconds per run.
BASE = ["--res", "32", "--batch", "8", "--channels", "8", "--log-every", "10", "--sample-kimg", "0.2",
        "--snapshot-kimg", "1000"]


@pytest.fixture(scope="module")
def blobs(tmp_path_factory):
    return make_images(tmp_path_factory.mktemp("data") / "blobs", 64, classes=())


def train(out, data, *options):
    result = run_trainer("--data", data, "--out", out, *BASE, *options)
    assert result.returncode == 0, result.stderr[-2000:]
    return out


def findings(run) -> dict[str, object]:
    """The findings by kind (the worst of each kind)."""
    found = {}
    for f in assess(run).findings:
        if f.kind not in found or SEVERITIES.index(f.severity) > SEVERITIES.index(found[f.kind].severity):
            found[f.kind] = f
    return found


def test_a_grid_splits_back_into_the_images_it_was_made_of():
    images = np.random.default_rng(0).integers(0, 255, (11, 16, 16, 3), dtype=np.uint8)
    images[:, 0, 0] = 0  # (a cell that is all white would pass for a blank one)
    sheet = np.asarray(make_grid(images, columns=grids.GRID_COLUMNS, gap=grids.GRID_GAP))
    assert np.array_equal(grids.split_grid(sheet), images)


@pytest.fixture(scope="module")
def healthy_run(blobs, tmp_path_factory):
    return train(tmp_path_factory.mktemp("runs") / "healthy", blobs, "--recipe", "small-data", "--kimg", "3")


def test_a_healthy_run_gets_no_false_alarm(healthy_run):
    found = findings(healthy_run)
    assert list(found) == ["healthy"], {k: f.title for k, f in found.items()}
    assert "r_t" in found["healthy"].evidence and "variety of shapes" in found["healthy"].evidence


def test_a_learning_rate_that_diverges(blobs, tmp_path):
    run = train(tmp_path / "lr", blobs, "--recipe", "tutorial", "--lr-g", "0.5", "--lr-d", "0.5", "--kimg", "3")
    found = findings(run)
    assert found["divergence"].severity == "problem" and "D rejects every generated image" in found["divergence"].title
    assert "healthy" not in found


def test_a_generator_that_collapses_the_step_it_started_and_the_rewind_it_advises(blobs, tmp_path, runs_root):
    run = train(runs_root / "collapsing", blobs, "--recipe", "tutorial", "--lr-g", "0.05", "--lr-d", "0.05",
                "--kimg", "3", "--snapshot-kimg", "0.2", "--keep-snapshots", "2")
    f = findings(run)["collapse"]
    saved = json.loads((run / "health.json").read_text())
    steps = [g["step"] for g in saved["grids"]]
    colours = [g["colours"] for g in saved["grids"]]
    best = steps[int(np.argmax(colours))]
    assert f.severity == "problem" and best < f.steps[0] <= f.steps[1] == steps[-1]
    assert colours[-1] < 0.5 * saved["real"]["colours"]  # what the finding says, in the numbers
    # The advice: a snapshot from before the fall (the newest one kept), with half the learning rates.
    # --keep-snapshots 2 deleted most of them, but not the one at the most varied grid.
    kept = RunFolder(run).snapshot_steps()
    assert len(kept) < len(steps) and best in kept  # snapshots fall on the grid steps here
    assert f.rewind == max(s for s in kept if s < f.steps[0]) >= best
    assert f"--rewind {f.rewind} --lr-scale 0.5" in f.action

    # Taken from the Monitor's button: a real trainer goes back and trains on at half the rates.
    at = AppTest.from_file(str(REPO / "pages" / "1_Training.py"), default_timeout=60).run()
    at.button(key=f"rewind-collapsing-{f.rewind}").click().run()
    assert not at.exception
    deadline = time.monotonic() + 120
    while json.loads((run / "status.json").read_text())["state"] != "finished" or "continuing from step" not in (
            run / "train.log").read_text():
        assert time.monotonic() < deadline, "the rewound run did not finish"
        time.sleep(0.5)
    rows = read_jsonl(run / "metrics.jsonl")
    assert [r["step"] for r in rows] == sorted({r["step"] for r in rows})  # one line per step, none twice
    assert {r["lr"] for r in rows if r["step"] <= f.rewind} == {0.05}
    assert {r["lr"] for r in rows if r["step"] > f.rewind} == {0.025}
    again = json.loads((run / "health.json").read_text())
    assert [g["step"] for g in again["grids"]] == saved_grid_steps(run) == steps  # later grids redone
    assert again["grids"][:steps.index(f.rewind) + 1] == saved["grids"][:steps.index(f.rewind) + 1]


def test_pruning_spares_the_snapshots_the_health_check_may_advise(tmp_path):
    run = RunFolder(tmp_path / "run")
    run.create()
    for step in range(10, 90, 10):
        run.snapshot_path(step).write_bytes(b"x")
    grids = [{"step": s, "colours": c, "shapes": h} for s, c, h in ((15, 0.1, 5), (35, 0.4, 9), (55, 0.2, 20),
                                                                    (75, 0.1, 3))]
    run.write_health({"grids": grids, "findings": [{"kind": "divergence", "rewind": 20}, {"kind": "healthy"}]})
    assert snapshots_to_spare(run.path) == {20, 30, 50}  # advised; at or before the most colours, shapes
    assert run.prune_snapshots(2, snapshots_to_spare(run.path)) == [10, 40, 60]
    assert run.snapshot_steps() == [20, 30, 50, 70, 80]
    # a damaged or edited health.json spares nothing it cannot read, and never stops a run
    for damaged in ({"findings": [{"rewind": [20]}, {"rewind": "30"}, 7], "grids": {"step": 50}},
                    {"findings": 3, "grids": [{"step": [70], "colours": 1.0}, {"step": 80, "colours": "a lot"}]}):
        run.write_health(damaged)
        assert snapshots_to_spare(run.path) == set()


def test_manage_run_rewinds_to_the_snapshot_and_scale_picked_last(blobs, runs_root):
    run = train(runs_root / "long", blobs, "--recipe", "small-data", "--kimg", "0.6", "--snapshot-kimg", "0.2",
                "--keep-snapshots", "0", "--no-health")
    at = AppTest.from_file(str(REPO / "pages" / "1_Training.py"), default_timeout=60).run()
    snapshot, scale = at.selectbox(key="snapshot-long"), at.select_slider(key="lr-scale-long")
    assert snapshot.options == ["75", "50", "25"] and scale.value == 0.5  # newest first; half by default
    for step, x in ((50, 1.0), (25, 0.5), (25, 0.25)):  # changed several times: the last choice counts
        snapshot.set_value(step).run()
        scale.set_value(x).run()
        assert (at.selectbox(key="snapshot-long").value, at.select_slider(key="lr-scale-long").value) == (step, x)
    at.button(key="rewind-long").click().run()
    assert not at.exception
    deadline = time.monotonic() + 120
    while json.loads((run / "status.json").read_text())["state"] != "finished" or "continuing from step 25" not in (
            run / "train.log").read_text():
        assert time.monotonic() < deadline, "the rewound run did not finish"
        time.sleep(0.5)
    rows = read_jsonl(run / "metrics.jsonl")
    assert {r["lr"] for r in rows if r["step"] <= 25} == {2e-4}
    assert {r["lr"] for r in rows if r["step"] > 25} == {5e-5} and rows[-1]["step"] == 75


def test_three_images_are_memorised(tmp_path):
    three = make_images(tmp_path / "three", 3, classes=(), seed=1)
    plain = findings(train(tmp_path / "tutorial", three, "--recipe", "tutorial", "--kimg", "3"))
    assert plain["overfitting"].severity == "warning" and "--aug ada" in plain["overfitting"].action
    # With adaptive augmentation, p climbs to its ceiling (fast here) and D still wins.
    ada = findings(train(tmp_path / "ada", three, "--recipe", "small-data", "--ada-kimg", "0.5", "--kimg", "3"))
    assert ada["overfitting"].severity == "problem" and "strongest augmentation" in ada["overfitting"].title


def test_a_run_that_stopped_learning_is_a_stall(blobs, tmp_path):
    run = train(tmp_path / "still", blobs, "--recipe", "small-data", "--lr-g", "1e-8", "--lr-d", "1e-8", "--kimg", "3")
    found = findings(run)
    assert found["stall"].severity == "warning" and "healthy" not in found
    first, last = found["stall"].steps
    assert 0 < first < last == json.loads((run / "health.json").read_text())["grids"][-1]["step"]


def saved_grid_steps(run) -> list[int]:
    return [int(p.stem[5:]) for p in sorted((run / "samples").glob("step-*.png"))]


def test_the_trainer_keeps_health_json_grid_by_grid_and_through_a_resume(blobs, tmp_path):
    run = train(tmp_path / "resumed", blobs, "--recipe", "small-data", "--kimg", "0.6")
    first = json.loads((run / "health.json").read_text())
    steps = [g["step"] for g in first["grids"]]
    assert steps == saved_grid_steps(run)
    assert first["real"]["shapes"] > 0 and 0 < first["real"]["colours"] <= 1
    assert first["severity"] in SEVERITIES and first["findings"]
    train(run, blobs, "--resume", "--kimg", "1.2")
    again = json.loads((run / "health.json").read_text())
    assert [g["step"] for g in again["grids"]] == saved_grid_steps(run) and len(again["grids"]) > len(steps)
    assert again["grids"][:len(steps)] == first["grids"]  # the same grids, measured the same, kept
    assert again["real"] == first["real"]


def test_the_cli_prints_findings_and_measures_old_runs(healthy_run, tmp_path):
    def cli(*args):
        return subprocess.run([sys.executable, "-m", "core.health", *map(str, args)], cwd=REPO,
                              capture_output=True, text=True, timeout=120)
    text = cli(healthy_run)
    assert text.returncode == 0 and "Training looks healthy" in text.stdout and "evidence:" in text.stdout
    as_json = json.loads(cli(healthy_run, "--json").stdout)
    assert as_json["severity"] == "ok" and as_json["findings"][0]["kind"] == "healthy"
    old = shutil.copytree(healthy_run, tmp_path / "old")
    saved = json.loads((old / "health.json").read_text())
    (old / "health.json").unlink()  # as a run trained before the health check
    assert cli(old, "--write").returncode == 0
    remeasured = json.loads((old / "health.json").read_text())
    assert [g["step"] for g in remeasured["grids"]] == [g["step"] for g in saved["grids"]]
    # From the PNG files instead of the trainer's tensors (PNG is lossless): the same numbers.
    for key in ("colours", "shapes", "kid64"):
        assert np.allclose([g[key] for g in remeasured["grids"]], [g[key] for g in saved["grids"]], rtol=1e-4), key
    for bad in (tmp_path / "nowhere", REPO / "core"):
        result = cli(bad)
        assert result.returncode == 1 and "not a run folder" in result.stderr


def test_metrics_as_csv(healthy_run, tmp_path):
    out = tmp_path / "m.csv"
    result = subprocess.run([sys.executable, "-m", "core.runs.metrics_csv", healthy_run, "-o", out], cwd=REPO,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    lines = [json.loads(line) for line in (healthy_run / "metrics.jsonl").read_text().splitlines()]
    assert len(rows) == len(lines) and rows[-1]["step"] == str(lines[-1]["step"])
    assert {"loss_d", "loss_g", "d_real", "rt", "aug_p"} <= set(rows[0])
    assert float(rows[3]["loss_d"]) == pytest.approx(lines[3]["loss_d"])


def test_the_monitor_shows_the_findings_and_home_the_badge(healthy_run, runs_root):
    shutil.copytree(healthy_run, runs_root / "healthy")
    at = AppTest.from_file(str(REPO / "pages" / "1_Training.py"), default_timeout=60).run()
    assert not at.exception
    assert any("Is it working?" in m.value and "healthy" in m.value for m in at.markdown)
    assert any("Training looks healthy" in shown(s.value) and "What to do" in s.value for s in at.success)
    home = AppTest.from_file(str(REPO / "Home.py"), default_timeout=60).run()
    assert not home.exception and list(home.dataframe[0].value["health"]) == ["💚 healthy"]


def test_tensorboard_events_mirror_the_metrics_and_the_grids(blobs, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    run = train(tmp_path / "tb", blobs, "--recipe", "small-data", "--kimg", "0.4", "--tensorboard", "--no-health")
    train(run, blobs, "--resume", "--kimg", "0.8")  # a resume continues the same curves
    events = EventAccumulator(str(run / "tensorboard"), size_guidance={"scalars": 0, "images": 0}).Reload()
    lines = read_jsonl(run / "metrics.jsonl")
    loss_d = events.Scalars("train/loss_d")
    assert [e.step for e in loss_d] == [line["step"] for line in lines]
    assert [e.value for e in loss_d] == pytest.approx([line["loss_d"] for line in lines], rel=1e-6)
    assert {"train/loss_g", "train/d_real", "train/aug_p", "train/lr"} <= set(events.Tags()["scalars"])
    assert [e.step for e in events.Images("samples")] == saved_grid_steps(run)


def test_without_the_tensorboard_package_the_option_says_how_to_get_it(blobs, tmp_path):
    hide = ("import runpy, sys; sys.modules['tensorboard'] = None; sys.argv[0] = 'core.train'; "
            "runpy.run_module('core.train', run_name='__main__')")
    result = subprocess.run([sys.executable, "-c", hide, "--data", str(blobs), "--out", str(tmp_path / "run"),
                             *BASE, "--kimg", "0.1", "--tensorboard"], cwd=REPO, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 2 and "pip install tensorboard" in result.stderr
    assert not (tmp_path / "run").exists()


def test_the_new_run_form_asks_for_event_files_and_says_what_is_missing(monkeypatch, tmp_path):
    from core.runs.newrun import NewRun, validate
    from core.runs.registry import Registry
    registry = Registry(tmp_path)
    options, errors = validate(NewRun(name="tb", tensorboard=True), registry)
    assert not errors and options["tensorboard"] is True
    assert "tensorboard" not in validate(NewRun(name="plain"), registry)[0]
    monkeypatch.setitem(sys.modules, "tensorboard", None)  # as on a machine without the package
    assert validate(NewRun(name="tb", tensorboard=True), registry) == \
        (None, ["TensorBoard needs the tensorboard package: pip install tensorboard."])
