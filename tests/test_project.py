"""Your own picture in the latent space: projection on a real generator, the CLI, saved latents."""
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import REPO, exit_code_and_stderr
from PIL import Image

from core import checkpoint
from core import project as project_cli
from core.data.imageset import load_image_set
from core.explore import latent, project
from core.paths import CHECKPOINTS_DIR, DEMO_RUN

DEMO = CHECKPOINTS_DIR / DEMO_RUN


@pytest.fixture(scope="module")
def G():
    return checkpoint.load_generator(DEMO / "checkpoints" / "latest.pt")[0]


def test_a_picture_the_generator_drew_is_found_again(G):
    perceptual = project.Perceptual()
    before = {k: v.clone() for k, v in perceptual.state_dict().items()}
    drawn = latent.render_seeds(G, [4242])[0]
    result = project.project(G, drawn, steps=100, starts=16, perceptual=perceptual)  # seeds 0-15, not 4242
    first, last = result.losses[0], result.losses[-1]
    assert last["loss"] < 0.5 * first["loss"] and last["pixel"] < 0.5 * first["pixel"]
    assert np.abs(result.image.astype(int) - drawn.astype(int)).mean() < 0.6 * np.abs(
        latent.render_seeds(G, [result.start_seed])[0].astype(int) - drawn.astype(int)).mean()
    # the feature network stays frozen; only z moved
    assert all(torch.equal(before[k], v) for k, v in perceptual.state_dict().items())
    assert not any(p.requires_grad for p in perceptual.parameters())
    assert np.array_equal(latent.render(G, result.z[None])[0], result.image)  # z is the whole result


def test_a_real_picture_gets_closer_than_any_starting_seed(G):
    real = load_image_set("builtin:emoji", 64).images[777]
    result = project.project(G, real, steps=60, starts=32)
    assert result.losses[-1]["loss"] < 0.9 * result.losses[0]["loss"]
    assert result.image.shape == (64, 64, 3) and abs(float(result.z.pow(2).mean()) - 1) < 0.5  # a typical length


def test_the_cli_writes_the_latent_reconstruction_and_losses(tmp_path, capsys):
    run = Path(shutil.copytree(DEMO, tmp_path / "run"))
    picture = tmp_path / "photo.jpg"
    Image.fromarray((np.random.default_rng(0).random((90, 120, 3)) * 255).astype(np.uint8)).save(picture)
    out = subprocess.run([sys.executable, "-m", "core.project", "--run", run, "--image", picture, "--steps", "15",
                          "--out", tmp_path / "out", "--name", "my photo"], cwd=REPO, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    saved = json.loads((tmp_path / "out" / "latent.json").read_text())
    assert len(saved["z"]) == checkpoint.load_generator(run / "checkpoints" / "latest.pt")[0].z_dim
    assert len(json.loads((tmp_path / "out" / "losses.json").read_text())) == 15
    for png in ("reconstruction.png", "target.png"):
        assert Image.open(tmp_path / "out" / png).size == (64, 64)
    kept = project.load_projections(run)
    assert list(kept) == ["my photo"] and torch.allclose(kept["my photo"]["z"], torch.tensor(saved["z"]), atol=1e-6)
    kept_file = run / project.PROJECTIONS_FILE
    z = saved["z"]
    kept_file.write_text(json.dumps({"bad": {"z": "x"}, "nan": {"z": [float("nan")]}, "class 5": {"z": z, "class": 5},
                                     "class list": {"z": z, "class": [0]}, **json.loads(kept_file.read_text())}))
    assert list(project.load_projections(run)) == ["my photo"]  # damaged entries are skipped
    assert list(project.load_projections(run, n_classes=6)) == ["class 5", "my photo"]  # a class it has
    (tmp_path / "broken.png").write_bytes(b"not an image")
    for args, code, message in ((["--image", tmp_path / "broken.png"], 1, "cannot read the image"),
                                (["--image", tmp_path / "none.png"], 1, "cannot read the image"),
                                (["--checkpoint", "x.pt"], 1, "no checkpoint 'x.pt'"),
                                (["--steps", "0"], 2, "--steps must be from 1"),
                                (["--class", "cats"], 1, "no class 'cats'"),
                                (["--name", "  "], 2, "--name: a projection needs a name")):
        got, stderr = exit_code_and_stderr(project_cli.main, ["--run", run, "--image", picture, "--out",
                                                              tmp_path / "bad", *args], capsys)
        assert got == code and message in stderr, (args, stderr[-500:])
