"""AppTest of the Latent Lab on real trained generators."""
import json
import shutil
from pathlib import Path

import pytest
from conftest import REPO, make_images, train_tiny_run
from streamlit.testing.v1 import AppTest

LAB = str(REPO / "pages" / "2_Latent_Lab.py")
DEMO = REPO / "checkpoints" / "demo-emoji"


@pytest.fixture(scope="module")
def trained_cond_run(tmp_path_factory):
    """Trained once for the module (a few seconds of CPU); each test gets its own copy."""
    work = tmp_path_factory.mktemp("lab")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("GANSCOPE_CACHE", str(work / "cache"))
        data = make_images(work / "images", 12, classes=("cats", "dogs", "owls"))
        return train_tiny_run(work / "tiny", data, "--cond", "--snapshot-kimg", "0.04")


@pytest.fixture
def cond_run(runs_root, trained_cond_run):
    return Path(shutil.copytree(trained_cond_run, runs_root / "tiny"))


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


def test_a_link_restores_the_view(cond_run):
    at = lab({"seed": "5", "psi": "0.5", "ganspace2": "2", "method": "GANSpace", "keys": "3, 4, 9",
              "class": "dogs"})
    assert not at.exception
    assert by_label(at.number_input, "Seed").value == 5
    assert by_label(at.slider, "Truncation ψ").value == 0.5
    assert by_label(at.radio, "Directions").value == "GANSpace"
    assert by_label(at.slider, "Direction 2").value == 2.0
    assert by_label(at.text_input, "Keyframe seeds").value == "3, 4, 9"
    assert by_label(at.selectbox, "Class").value == "dogs"


def editor_caption(at) -> str:
    return next(c for i in at.get("image") for c in i.captions if c.startswith(("seed ", "your picture ")))


def test_every_change_in_a_row_takes(cond_run):
    """The regression behind issue 13: each change after the first was dropped every other time."""
    at = lab()
    for seed in (7, 9, 11, 13):
        by_label(at.number_input, "Seed").set_value(seed).run()
        assert not at.exception and by_label(at.number_input, "Seed").value == seed
        assert editor_caption(at) == f"seed {seed}"
    for psi in (0.9, 1.35, 0.5, 0.0):
        by_label(at.slider, "Truncation ψ").set_value(psi).run()
        assert by_label(at.slider, "Truncation ψ").value == psi
    for method in ("GANSpace", "SeFa", "GANSpace"):
        by_label(at.radio, "Directions").set_value(method).run()
        assert by_label(at.radio, "Directions").value == method
    for amount in (1.0, -2.0, 0.5):
        by_label(at.slider, "Direction 1").set_value(amount).run()
        assert by_label(at.slider, "Direction 1").value == amount
    by_label(at.button, "Reset edits").click().run()
    assert by_label(at.slider, "Direction 1").value == 0.0  # the slider shows the reset too
    by_label(at.slider, "Direction 2").set_value(0.3).run()
    assert by_label(at.slider, "Direction 1").value == 0.0  # and the old edit does not come back
    for ckpt in ("step-00000005.pt", "latest.pt", "step-00000010.pt"):
        by_label(at.selectbox, "Checkpoint").set_value(ckpt).run()
        assert by_label(at.selectbox, "Checkpoint").value == ckpt


def test_a_direction_made_from_examples_is_saved_and_gets_a_slider(cond_run):
    at = lab()
    by_label(at.multiselect, "More like these").set_value([0, 1]).run()
    by_label(at.button, "Next ▶").click().run()  # examples come from several pages of the grid
    more = by_label(at.multiselect, "More like these")
    assert more.value == [0, 1] and "16" in more.options  # (options as shown)
    more.set_value([0, 1, 16])
    by_label(at.multiselect, "Less like these").set_value([2])
    by_label(at.text_input, "Direction name").set_value("rounder")
    by_label(at.button, "Save direction").click().run()
    assert not at.exception and "Saved 'rounder'" in at.success[0].value
    saved = json.loads((cond_run / "directions.json").read_text())
    z_dim = json.loads((cond_run / "config.json").read_text())["z_dim"]
    assert len(saved["rounder"]["vector"]) == z_dim
    assert saved["rounder"]["note"] == "more [0, 1, 16], less [2]"
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


def test_your_pictures_become_the_editors_start_one_after_another(cond_run):
    at = lab()
    by_label(at.radio, "Picture").set_value("A training image").run()
    by_label(at.slider, "Steps").set_value(50).run()
    for index in (3, 5):  # two pictures in a row: each one lands in the editor
        by_label(at.number_input, "Training image").set_value(index).run()
        by_label(at.button, "Put it in the latent space").click().run()
        assert not at.exception
        assert by_label(at.selectbox, "Start from").value == f"training-{index}"
        assert editor_caption(at) == f"your picture training-{index} (ψ 1, as projected)"
    saved = json.loads((cond_run / "projections.json").read_text())
    assert sorted(saved) == ["training-3", "training-5"] and len(saved["training-3"]["z"]) == 100
    by_label(at.selectbox, "Start from").set_value("a seed").run()
    by_label(at.number_input, "Seed").set_value(7).run()
    assert editor_caption(at) == "seed 7"
    by_label(at.selectbox, "Start from").set_value("training-3").run()
    by_label(at.slider, "Direction 1").set_value(1.5).run()  # the edits apply to it like to any seed
    assert not at.exception and by_label(at.selectbox, "Start from").value == "training-3"
    by_label(at.selectbox, "Start from").set_value("a seed").run()  # the seed waited while it was hidden
    assert by_label(at.number_input, "Seed").value == 7 and editor_caption(at) == "seed 7"
    by_label(at.selectbox, "Start from").set_value("training-5").run()
    by_label(at.button, "12").click().run()  # a seed picked in the grid takes over from the picture
    assert by_label(at.selectbox, "Start from").value == "a seed" and editor_caption(at) == "seed 12"
    # and both are keyframes of an interpolation, after seed 0, then on their own
    by_label(at.multiselect, "Then through your pictures").set_value(["training-3", "training-5"]).run()
    by_label(at.text_input, "Keyframe seeds").set_value("0").run()
    assert not at.exception and not at.error and by_label(at.slider, "Frame").max == 8
    by_label(at.text_input, "Keyframe seeds").set_value("").run()
    assert not at.exception and not at.error and by_label(at.slider, "Frame").max == 8
