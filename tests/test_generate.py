"""Taking images out: the CLI writes the images it says with the seeds it says, settings.json
makes them again, --no-copies leaves out planted copies of training images; the Latent Lab's zip."""
import io
import json
import shlex
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO, shown
from PIL import Image
from streamlit.testing.v1 import AppTest

from core import checkpoint
from core.data import holdout
from core.explore import generate, latent
from core.paths import CHECKPOINTS_DIR, DEMO_RUN

DEMO = CHECKPOINTS_DIR / DEMO_RUN


def cli(*args, timeout=300):
    return subprocess.run([sys.executable, "-m", "core.generate", *map(str, args)], cwd=REPO, capture_output=True,
                          text=True, timeout=timeout)


@pytest.fixture(scope="module")
def G():
    return checkpoint.load_generator(DEMO / "checkpoints" / "latest.pt")[0]


def test_the_images_it_says_with_the_seeds_it_says(tmp_path, G):
    out = tmp_path / "set"
    result = cli("--run", DEMO, "--seeds", "3, 10-12", "--psi", "0.7", "--out", out)
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in out.glob("*.png")) == [generate.file_name(s) for s in (3, 10, 11, 12)]
    meta = json.loads((out / generate.SETTINGS_FILE).read_text())
    assert meta["seeds"] == [3, 10, 11, 12] and meta["psi"] == 0.7 and meta["size"] == 64
    for seed in meta["seeds"]:  # each one drawn again alone (a batch of 1: oneDNN may round 1 level apart)
        alone = latent.render_seeds(G, [seed], meta["psi"])[0].astype(int)
        assert np.abs(np.asarray(Image.open(out / generate.file_name(seed))).astype(int) - alone).max() <= 1
    # the command in settings.json makes the same files again
    again = shlex.split(meta["again"])
    assert again[:3] == ["python", "-m", "core.generate"] and again[-2:] == ["--out", "OUT"]
    assert cli(*again[3:-1], tmp_path / "again").returncode == 0
    assert all((tmp_path / "again" / p.name).read_bytes() == p.read_bytes() for p in out.glob("*.png"))
    big = cli("--run", DEMO, "--n", "3", "--first-seed", "40", "--size", "128", "--out", tmp_path / "big", "--json")
    assert big.returncode == 0 and json.loads(big.stdout)["seeds"] == [40, 41, 42]
    assert Image.open(tmp_path / "big" / generate.file_name(41)).size == (128, 128)


@pytest.mark.parametrize("args, code, message", [
    (["--seeds", "5-2"], 2, "a range goes up"), (["--seeds", "x"], 2, "whole numbers or ranges"),
    (["--n", "0"], 2, "--n must be from 1"), (["--seeds", "1", "--psi", "3"], 2, "--psi must be"),
    (["--seeds", "1", "--size", "4096"], 2, "--size must be"), (["--seeds", "1", "--class", "cats"], 1, "no class"),
    (["--seeds", "1", "--checkpoint", "../config.json"], 1, "no checkpoint"),
    (["--seeds", "1", "--network", "G"], 1, "holds no G")])
def test_bad_options_are_refused_with_the_reason(tmp_path, args, code, message):
    result = cli("--run", DEMO, *args, "--out", tmp_path / "out", timeout=120)
    assert result.returncode == code and message in result.stderr, result.stderr[-500:]
    assert not (tmp_path / "out").exists()


def test_no_copies_leaves_out_images_of_the_training_set(tmp_path, G):
    """A run whose training images are what its generator draws for seeds 0-219: those seeds are
    copies; the held-out ones and seeds past 219 are not."""
    data = tmp_path / "data"
    data.mkdir()
    for i in range(0, 220, 20):
        for seed, image in zip(range(i, i + 20), latent.render_seeds(G, range(i, i + 20))):
            Image.fromarray(image).save(data / f"seed{seed:03d}.png")
    run = Path(shutil.copytree(DEMO, tmp_path / "run"))
    config = json.loads((run / "config.json").read_text())
    (run / "config.json").write_text(json.dumps({**config, "data": str(data), "fit": "crop", "res": 64}))
    names = sorted(p.name for p in data.iterdir())
    held = holdout.pick_held_out(names, 0.1, seed=0)
    (run / "holdout.json").write_text(json.dumps({"fraction": 0.1, "names": held}))
    trained = {int(n[4:7]) for n in names if n not in held}
    result = cli("--run", run, "--n", "6", "--no-copies", "--out", tmp_path / "out", "--json")
    assert result.returncode == 0, result.stderr[-2000:]
    meta = json.loads(result.stdout)
    assert len(meta["seeds"]) == 6 and not set(meta["seeds"]) & trained  # nothing handed out is a copy
    left_out = set(meta["left_out_as_copies"])
    assert len(left_out & trained) >= 20 and len(left_out - trained) <= 1  # (the check's ~2 % false alarms)


def test_the_latent_lab_makes_a_zip_each_time(runs_root):
    shutil.copytree(DEMO, runs_root / DEMO_RUN)
    at = AppTest.from_file(str(REPO / "pages" / "2_Latent_Lab.py"), default_timeout=120).run()
    for seeds, expected in (("0-11", list(range(12))), ("5, 7", [5, 7]), ("0-600", None), ("9", [9])):  # in a row
        at.text_input(key="set-seeds").set_value(seeds).run()
        if expected is None:  # too many for a zip in memory: the page says how to make them instead
            message = shown(at.error[0].value)
            assert f"At most {generate.MAX_IN_APP} images per set here" in message and not at.exception
            assert "python -m core.generate --run checkpoints/demo-emoji --seeds 0-600" in message
            continue
        next(b for b in at.button if b.label.startswith(f"Make {len(expected)} image")).click().run()
        assert not at.exception and not at.error
        name, data, meta, preview = at.session_state["image-set"]
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            assert json.loads(z.read(generate.SETTINGS_FILE)) == meta
            assert sorted(z.namelist()) == sorted([generate.file_name(s) for s in expected] + ["settings.json"])
        assert meta["seeds"] == expected and meta["run"] == f"checkpoints/{DEMO_RUN}" and meta["network"] == "G_ema"
        assert len(preview) == min(len(expected), 9)  # the page shows a few; the zip holds them all
