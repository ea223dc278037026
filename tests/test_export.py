"""A standalone generator: exported as TorchScript, it samples in a fresh Python that has never
imported GANscope, and draws what GANscope draws (within core.explore.standalone.TOLERANCE)."""
import io
import shutil
import subprocess
import sys

import pytest
import torch
from conftest import REPO, make_images, train_tiny_run
from streamlit.testing.v1 import AppTest

from core import checkpoint
from core.explore import standalone
from core.explore.standalone import TOLERANCE
from core.paths import CHECKPOINTS_DIR, DEMO_RUN

FRESH = """
import sys, torch
G = torch.jit.load(sys.argv[1])
inputs = torch.load(sys.argv[2], weights_only=True)
with torch.no_grad():
    x = G(inputs["z"], inputs["c"]) if G.n_classes else G(inputs["z"])
torch.save({"x": x, "z_dim": G.z_dim, "n_classes": G.n_classes, "core": "core" in sys.modules}, sys.argv[3])
"""


def exported_and_sampled_elsewhere(run, tmp_path, n=5):
    out = subprocess.run([sys.executable, "-m", "core.export", "--run", run, "--out", tmp_path / "G.pt"], cwd=REPO,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    G, info = checkpoint.load_generator(run / "checkpoints" / "latest.pt")
    z = torch.randn(n, G.z_dim, generator=torch.Generator().manual_seed(7))
    c = torch.arange(n) % max(G.n_classes, 1)
    torch.save({"z": z, "c": c}, tmp_path / "in.pt")
    fresh = subprocess.run([sys.executable, "-c", FRESH, tmp_path / "G.pt", tmp_path / "in.pt", tmp_path / "out.pt"],
                           cwd=tmp_path, capture_output=True, text=True, timeout=300)  # not in the repo: no core
    assert fresh.returncode == 0, fresh.stderr[-2000:]
    result = torch.load(tmp_path / "out.pt", weights_only=True)
    with torch.no_grad():
        ours = G(z, c if G.n_classes else None).clamp(-1, 1)
    return result, ours, G


def test_the_demo_generator_samples_without_ganscope(tmp_path):
    result, ours, G = exported_and_sampled_elsewhere(CHECKPOINTS_DIR / DEMO_RUN, tmp_path)
    assert not result["core"] and (result["z_dim"], result["n_classes"]) == (G.z_dim, 0)
    assert result["x"].shape == (5, 3, G.res, G.res) and (result["x"] - ours).abs().max() <= TOLERANCE
    assert result["x"].min() >= -1 and result["x"].max() <= 1


def test_a_conditional_generator_takes_classes(tmp_path, runs_root):
    run = train_tiny_run(runs_root / "cond", make_images(tmp_path / "imgs", 12, classes=("a", "b", "c")), "--cond")
    result, ours, G = exported_and_sampled_elsewhere(run, tmp_path, n=6)
    assert result["n_classes"] == 3 and (result["x"] - ours).abs().max() <= TOLERANCE
    assert (result["x"][0] - result["x"][1]).abs().max() > 0  # the class matters


def test_a_missing_checkpoint_is_refused(tmp_path):
    out = subprocess.run([sys.executable, "-m", "core.export", "--run", CHECKPOINTS_DIR / DEMO_RUN, "--checkpoint",
                          "step-1.pt", "--out", tmp_path / "G.pt"], cwd=REPO, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 1 and "no checkpoint 'step-1.pt'" in out.stderr and not (tmp_path / "G.pt").exists()


def test_the_latent_lab_offers_the_file(runs_root):
    shutil.copytree(CHECKPOINTS_DIR / DEMO_RUN, runs_root / DEMO_RUN)
    at = AppTest.from_file(str(REPO / "pages" / "2_Latent_Lab.py"), default_timeout=120).run()
    next(b for b in at.button if b.label == "Export the generator").click().run()
    assert not at.exception
    data = at.session_state["standalone"][2]
    G = checkpoint.load_generator(CHECKPOINTS_DIR / DEMO_RUN / "checkpoints" / "latest.pt")[0]
    assert standalone.difference(torch.jit.load(io.BytesIO(data)), G) <= TOLERANCE  # the offered file draws G


def test_a_file_that_draws_differently_is_never_left(tmp_path, monkeypatch):
    """The check runs on the file as written, before it takes the name: a generator whose
    traced copy drifts (here: every weight nudged) is refused, and nothing is at --out."""
    real_baked = standalone.baked

    def drifting(G):
        G = real_baked(G)
        with torch.no_grad():
            for p in G.parameters():
                p.add_(1e-2)
        return G
    monkeypatch.setattr(standalone, "baked", drifting)
    with pytest.raises(ValueError, match="draws differently from GANscope"):
        standalone.export(CHECKPOINTS_DIR / DEMO_RUN / "checkpoints" / "latest.pt", tmp_path / "G.pt")
    assert list(tmp_path.iterdir()) == []
