"""AppTest of the Latent Lab on real trained generators."""
import json
import shutil

import pytest
from streamlit.testing.v1 import AppTest

from conftest import REPO, make_images, train_tiny_run

LAB = str(REPO / "pages" / "2_Latent_Lab.py")
DEMO = REPO / "checkpoints" / "demo-emoji"


@pytest.fixture
def cond_run(runs_root, tmp_path):
    data = make_images(tmp_path / "images", 12, classes=("cats", "dogs", "owls"))
    return train_tiny_run(runs_root / "tiny", data, "--cond", "--snapshot-kimg", "0.04")


def by_label(elements, label):
    return next(e for e in elements if e.label == label)


def lab(query=None):
    at = AppTest.from_file(LAB, default_timeout=60)
    for k, v in (query or {}).items():
        at.query_params[k] = v
    return at.run()


def test_lab_renders_a_conditional_run(cond_run):
    at = lab()
    assert not at.exception
    assert by_label(at.selectbox, "Run").value == "tiny"
    assert by_label(at.selectbox, "Class").options == ["cats", "dogs", "owls"]
    assert by_label(at.selectbox, "Checkpoint").options == ["latest.pt", "step-00000010.pt", "step-00000005.pt"]
    assert [s.label for s in at.slider if s.label.startswith("Direction")] == \
        [f"Direction {i}" for i in (1, 3, 5, 7, 2, 4, 6, 8)]
    assert len([b for b in at.button if b.label.isdigit()]) == 16  # the seed grid


def test_url_restores_the_view_and_follows_changes(cond_run):
    at = lab({"seed": "5", "psi": "0.5", "edits": "1:2", "method": "ganspace", "keys": "3,4,9"})
    assert not at.exception
    assert by_label(at.number_input, "Seed").value == 5
    assert by_label(at.slider, "Truncation ψ").value == 0.5
    assert by_label(at.slider, "Direction 2").value == 2.0
    assert by_label(at.text_input, "Keyframe seeds").value == "3, 4, 9"
    by_label(at.slider, "Direction 1").set_value(-1.5).run()
    assert at.query_params["edits"] == "0:-1.5,1:2"
    by_label(at.slider, "Truncation ψ").set_value(0.0).run()
    assert at.query_params["psi"] == "0" and at.query_params["seed"] == "5"


def test_a_direction_made_from_examples_is_saved_and_gets_a_slider(cond_run):
    at = lab()
    by_label(at.multiselect, "More like these").set_value([0, 1])
    by_label(at.multiselect, "Less like these").set_value([2])
    by_label(at.text_input, "Direction name").set_value("rounder")
    by_label(at.button, "Save direction").click().run()
    assert not at.exception and "Saved 'rounder'" in at.success[0].value
    saved = json.loads((cond_run / "directions.json").read_text())
    z_dim = json.loads((cond_run / "config.json").read_text())["z_dim"]
    assert len(saved["rounder"]["vector"]) == z_dim == 100  # the default recipe's z
    at = lab()
    assert by_label(at.slider, "rounder").value == 0.0


def test_the_demo_run_is_preselected(runs_root, cond_run):
    if not (DEMO / "checkpoints" / "latest.pt").exists():
        pytest.skip("no demo run in this checkout")
    shutil.copytree(DEMO, runs_root / "demo-emoji")
    at = lab()
    assert not at.exception
    assert by_label(at.selectbox, "Run").value == "demo-emoji"
    assert by_label(at.radio, "Network").options == ["G_ema"]  # exported: generator only


def test_lab_without_runs(runs_root):
    at = lab()
    assert not at.exception and "No trained generator yet" in at.info[0].value
