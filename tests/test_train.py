"""The trainer as a real process: the run folder it writes, exact resume, signals, NaN recovery."""
import math
import time

import pytest
import torch
from conftest import TINY, read_json, read_jsonl, run_trainer, start_trainer, stop_process, wait_for
from PIL import Image

from core import checkpoint
from core.explore import latent
from core.training.ema import with_standing_statistics

METRIC_KEYS = {"step", "kimg", "time", "loss_d", "loss_g", "d_real", "d_fake", "r1", "aug_p",
               "img_per_sec", "lr"}
STATUS_KEYS = {"state", "pid", "step", "kimg", "img_per_sec", "heartbeat", "started_at",
               "updated_at", "message"}
FULL_CHECKPOINT_KEYS = {"model", "G", "G_ema", "D", "opt_G", "opt_D", "aug_p", "counters", "rng"}


def test_short_run_writes_every_file(image_folder, tmp_path):
    run = tmp_path / "run"
    started = time.time()
    result = run_trainer("--data", image_folder, "--out", run, *TINY, "--kimg", "0.4")
    assert result.returncode == 0, result.stderr

    config = read_json(run / "config.json")
    assert config["data"] == str(image_folder) and config["res"] == 32 and config["kimg"] == 0.4
    assert config["recipe"] == "small-data" and config["arch"] == "dcgan"
    assert config["r1_gamma"] > 0 and config["ema_kimg"] > 0 and config["aug"] == "ada" and config["beta1"] == 0
    assert config["runtime"]["n_images"] == 12 and config["runtime"]["device"] == "cpu"

    status = read_json(run / "status.json")
    assert STATUS_KEYS <= status.keys()
    assert status["state"] == "finished" and status["step"] == 50 and status["kimg"] == 0.4
    assert isinstance(status["pid"], int) and status["img_per_sec"] > 0
    assert started <= status["started_at"] <= status["heartbeat"] <= time.time()

    metrics = read_jsonl(run / "metrics.jsonl")
    assert [m["step"] for m in metrics] == [10, 20, 30, 40, 50]
    for row in metrics:
        assert METRIC_KEYS <= row.keys()
        assert all(math.isfinite(row[k]) for k in ("loss_d", "loss_g", "d_real", "d_fake", "img_per_sec"))
        assert 0 <= row["d_real"] <= 1 and 0 <= row["aug_p"] <= 1 and row["lr"] == 2e-4
    assert metrics[-1]["kimg"] == 0.4
    assert any(m["r1"] is not None for m in metrics)  # lazy R1 ran and was logged

    grid_side = 8 * (32 + 2) + 2
    for name in ["reals.png", "step-00000000.png", "step-00000025.png", "step-00000050.png"]:
        with Image.open(run / "samples" / name) as im:
            assert im.size == (grid_side, grid_side) and im.mode == "RGB"
    assert not list(run.rglob("*.tmp")), "temp files left behind"

    latents = torch.load(run / "latents.pt", weights_only=True)
    assert latents["z"].shape == (64, config["z_dim"]) and config["z_dim"] == 100
    latest = checkpoint.load(run / "checkpoints" / "latest.pt")
    assert FULL_CHECKPOINT_KEYS <= latest.keys()
    assert latest["counters"]["step"] == 50 and latest["counters"]["nimg"] == 400
    snapshots = sorted(p.name for p in (run / "checkpoints").glob("step-*.pt"))
    assert snapshots == ["step-00000025.pt", "step-00000050.pt"]
    log = (run / "train.log").read_text()
    assert "data: 12 images, 2 classes" in log and "finished at step 50" in log


def _weights_equal(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_resume_continues_exactly(image_folder, tmp_path):
    # R1 every 4 steps, EMA, class conditioning and augmentation with p > 0 all
    # carry state or draw random numbers: each must survive the restart.
    recipe = [*TINY, "--cond", "--r1-every", "4", "--aug-p", "0.3", "--ada-kimg", "2"]
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    assert run_trainer("--data", image_folder, "--out", straight, *recipe, "--kimg", "0.4").returncode == 0
    first = run_trainer("--data", image_folder, "--out", resumed, *recipe, "--kimg", "0.2")
    assert first.returncode == 0, first.stderr
    assert read_json(resumed / "status.json")["step"] == 25
    second = run_trainer("--out", resumed, "--resume", "--kimg", "0.4")
    assert second.returncode == 0, second.stderr

    a = checkpoint.load(straight / "checkpoints" / "latest.pt")
    b = checkpoint.load(resumed / "checkpoints" / "latest.pt")
    assert a["counters"]["step"] == b["counters"]["step"] == 50
    assert a["counters"]["nimg"] == b["counters"]["nimg"] == 400
    for part in ("G", "G_ema", "D"):
        assert _weights_equal(a[part], b[part]), f"{part} differs after resume"
    for opt in ("opt_G", "opt_D"):
        for key, state in a[opt]["state"].items():
            assert _weights_equal(state, b[opt]["state"][key])
    assert torch.equal(a["aug_p"], b["aug_p"]) and float(a["aug_p"]) != 0.3  # p adapted

    rows_a = read_jsonl(straight / "metrics.jsonl")
    rows_b = read_jsonl(resumed / "metrics.jsonl")
    assert [r["step"] for r in rows_b] == [r["step"] for r in rows_a] == [10, 20, 30, 40, 50]
    for ra, rb in zip(rows_a, rows_b):
        for key in ("loss_d", "loss_g", "d_real", "d_fake", "r1", "aug_p", "kimg"):
            assert ra[key] == rb[key], (ra["step"], key)
    assert read_json(resumed / "status.json")["state"] == "finished"


def test_rewind_to_a_snapshot_replays_exactly_or_with_other_learning_rates(image_folder, tmp_path):
    run = tmp_path / "run"
    options = [*TINY, "--sample-kimg", "0.08", "--keep-snapshots", "0", "--kimg", "0.4"]  # snapshots at 25, 50
    assert run_trainer("--data", image_folder, "--out", run, *options).returncode == 0
    rows, end = read_jsonl(run / "metrics.jsonl"), checkpoint.load(run / "checkpoints" / "latest.pt")
    grids = {p.name: p.read_bytes() for p in (run / "samples").glob("step-*.png")}

    same = run_trainer("--out", run, "--resume", "--rewind", "25", "--lr-scale", "1")
    assert same.returncode == 0, same.stderr
    assert "continuing from step 25 (0.20 kimg) (rewound)" in (run / "train.log").read_text()
    replay = read_jsonl(run / "metrics.jsonl")
    assert [r["step"] for r in replay] == [r["step"] for r in rows] == [10, 20, 30, 40, 50]
    for ra, rb in zip(rows, replay):
        for key in ("loss_d", "loss_g", "d_real", "d_fake", "r1", "aug_p", "lr"):
            assert ra[key] == rb[key], (ra["step"], key)
    assert _weights_equal(end["G"], checkpoint.load(run / "checkpoints" / "latest.pt")["G"])
    assert {p.name: p.read_bytes() for p in (run / "samples").glob("step-*.png")} == grids

    half = run_trainer("--out", run, "--resume", "--rewind", "25", "--lr-scale", "0.5")
    assert half.returncode == 0, half.stderr
    assert [(r["step"], r["lr"]) for r in read_jsonl(run / "metrics.jsonl")] == [
        (10, 2e-4), (20, 2e-4), (30, 1e-4), (40, 1e-4), (50, 1e-4)]
    assert read_json(run / "status.json")["lr_scale"] == 0.5
    assert sorted(p.name for p in (run / "checkpoints").glob("step-*.pt")) == ["step-00000025.pt", "step-00000050.pt"]

    refused = {"to rewind to (snapshots: 25, 50)": ["--out", run, "--resume", "--rewind", "7"],
               "add --resume": ["--data", image_folder, "--out", tmp_path / "new", *TINY, "--rewind", "25"],
               "--lr-scale 0.0 is not between": ["--out", run, "--resume", "--lr-scale", "0"]}
    for message, args in refused.items():
        result = run_trainer(*args)
        assert result.returncode == 2 and message in result.stderr, result.stderr


def test_resume_refuses_changed_settings(image_folder, tmp_path):
    run = tmp_path / "run"
    assert run_trainer("--data", image_folder, "--out", run, *TINY, "--kimg", "0.08").returncode == 0
    result = run_trainer("--out", run, "--resume", "--res", "64")
    assert result.returncode == 2
    assert "--res 64 differs from the run's saved 32" in result.stderr
    # And a new run may not overwrite it.
    again = run_trainer("--data", image_folder, "--out", run, *TINY, "--kimg", "0.08")
    assert again.returncode == 2 and "use --resume" in again.stderr
    assert (run / "checkpoints" / "latest.pt").exists()


def test_sigterm_stops_with_a_checkpoint_and_resumes(image_folder, tmp_path):
    run = tmp_path / "run"
    proc = start_trainer("--data", image_folder, "--out", run, *TINY, "--kimg", "1000",
                         log_path=tmp_path / "out.log")
    try:
        wait_for(lambda: (run / "metrics.jsonl").exists() and len(read_jsonl(run / "metrics.jsonl")) >= 2,
                 what="two metric lines")
        status = read_json(run / "status.json")
        assert status["state"] == "running" and status["pid"] == proc.pid
    finally:
        code = stop_process(proc)
    assert code == 0, (tmp_path / "out.log").read_text()
    status = read_json(run / "status.json")
    assert status["state"] == "stopped"
    saved = checkpoint.load(run / "checkpoints" / "latest.pt")
    assert saved["counters"]["step"] == status["step"] >= 20
    assert "stopped by SIGTERM" in (run / "train.log").read_text()

    target = (status["step"] + 10) * 8 / 1000
    resumed = run_trainer("--out", run, "--resume", "--kimg", str(target))
    assert resumed.returncode == 0, resumed.stderr
    final = read_json(run / "status.json")
    assert final["state"] == "finished" and final["step"] == status["step"] + 10
    steps = [r["step"] for r in read_jsonl(run / "metrics.jsonl")]
    assert steps == sorted(set(steps)), "duplicated metric steps after resume"


def test_nan_loss_reloads_and_halves_learning_rates(image_folder, tmp_path):
    run = tmp_path / "run"
    result = run_trainer("--data", image_folder, "--out", run, *TINY, "--kimg", "0.2",
                         "--log-every", "5", "--latest-minutes", "0", "--inject-nan", "12")
    assert result.returncode == 0, result.stderr
    status = read_json(run / "status.json")
    assert status["state"] == "finished" and status["nan_recoveries"] == 1
    rows = read_jsonl(run / "metrics.jsonl")
    assert [r["step"] for r in rows] == [5, 10, 15, 20, 25]
    assert rows[0]["lr"] == 2e-4 and rows[-1]["lr"] == 1e-4
    assert all(math.isfinite(r["loss_d"]) for r in rows)
    assert "reloaded step 10, learning rates now x0.5 (recovery 1 of 3)" in (run / "train.log").read_text()


def test_repeated_nan_gives_up_as_failed(image_folder, tmp_path):
    run = tmp_path / "run"
    result = run_trainer("--data", image_folder, "--out", run, *TINY, "--kimg", "0.2",
                         "--log-every", "5", "--latest-minutes", "0", "--inject-nan", "12:99")
    assert result.returncode == 1
    status = read_json(run / "status.json")
    assert status["state"] == "failed" and "giving up" in status["message"]
    assert (run / "train.log").read_text().count("recovery") == 3


def test_ada_raises_p_when_discriminator_overfits(tmp_path):
    # Four images, a frozen G and no R1: D soon tells every training image from
    # the fakes (r_t -> 1, far above the 0.6 target), so adaptive p must climb.
    from conftest import make_images
    data = make_images(tmp_path / "few", 4, classes=())
    run = tmp_path / "run"
    result = run_trainer("--data", data, "--out", run, *TINY, "--kimg", "1.2", "--lr-g", "1e-9",
                         "--lr-d", "1e-3", "--r1-gamma", "0", "--ada-kimg", "2", "--log-every", "25")
    assert result.returncode == 0, result.stderr
    rows = read_jsonl(run / "metrics.jsonl")
    assert rows[-1]["rt"] > 0.6
    p = [r["aug_p"] for r in rows]
    assert p[-1] > 0.3 and p == sorted(p), p


@pytest.mark.parametrize("arch", ["dcgan", "resnet"])
def test_each_architecture_trains(image_folder, tmp_path, arch):
    run = tmp_path / arch
    result = run_trainer("--data", image_folder, "--out", run, "--arch", arch, "--res", "32",
                         "--batch", "8", "--channels", "8", "--kimg", "0.08", "--log-every", "5")
    assert result.returncode == 0, result.stderr
    G, ckpt = checkpoint.load_generator(run / "checkpoints" / "latest.pt")
    assert ckpt["model"]["arch"] == arch
    z = torch.randn(5, ckpt["model"]["z_dim"])
    assert G(z).shape == (5, 3, 32, 32)
    # Exploring renders one image at a time: it must not depend on the rest of the batch.
    alone = latent.render(G, z[2:3])[0].astype(int)
    assert abs(alone - latent.render(G, z)[2]).max() <= 1
    if arch == "dcgan":  # the saved G_ema carries its own BatchNorm statistics, not the trained G's
        own = with_standing_statistics(G).state_dict()
        saved = checkpoint.load(run / "checkpoints" / "latest.pt")
        stats = [k for k in saved["G"] if k.endswith(("running_mean", "running_var"))]
        assert stats and all(torch.allclose(saved["G_ema"][k], own[k], rtol=1e-4, atol=1e-6) for k in stats)
        assert not all(torch.equal(saved["G_ema"][k], saved["G"][k]) for k in stats)


def test_compiled_networks_train_with_r1(image_folder, tmp_path):
    """--compile: the same run folder. R1 steps need a double backward, which compiled
    graphs cannot take, so they run the plain D; both kinds of step must work."""
    run = tmp_path / "compiled"
    result = run_trainer("--data", image_folder, "--out", run, *TINY, "--kimg", "0.08", "--compile",
                         "--r1-every", "2", "--log-every", "5")
    assert result.returncode == 0, result.stderr
    assert "torch.compile" in (run / "train.log").read_text()
    rows = read_jsonl(run / "metrics.jsonl")
    assert [r["step"] for r in rows] == [5, 10] and all(r["r1"] > 0 for r in rows)
    assert all(math.isfinite(r["loss_d"]) and math.isfinite(r["loss_g"]) for r in rows)
    assert read_json(run / "config.json")["compile"] is True
