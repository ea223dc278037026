"""AppTest of the Real vs Fake and Map pages on real trained generators and real features."""
import json
import shutil

import pytest
from conftest import REPO, make_images, train_tiny_run
from streamlit.testing.v1 import AppTest

REAL_VS_FAKE = str(REPO / "pages" / "3_Real_vs_Fake.py")
MAP = str(REPO / "pages" / "4_Map.py")
DEMO = REPO / "checkpoints" / "demo-emoji"


@pytest.fixture
def tiny_run(runs_root, tmp_path):
    data = make_images(tmp_path / "images", 24, classes=("cats", "dogs"))
    return train_tiny_run(runs_root / "tiny", data, "--cond", "--snapshot-kimg", "0.04")


def by_label(elements, label):
    return next(e for e in elements if e.label == label)


def page(path, query=None):
    at = AppTest.from_file(path, default_timeout=300)
    for k, v in (query or {}).items():
        at.query_params[k] = v
    return at.run()


def open_tab(at, name):
    at.session_state["compare-tab"] = name  # only the open tab runs
    return at.run()


def test_real_vs_fake_page(tiny_run):
    at = page(REAL_VS_FAKE)
    assert not at.exception
    assert [t.label for t in at.tabs] == ["Side by side", "Nearest real image", "Copying test", "Quiz", "Metrics"]
    assert by_label(at.selectbox, "Class").options == ["all", "cats", "dogs"]
    open_tab(at, "Nearest real image")
    messages = [m.value for m in at.success] + [m.value for m in at.warning]
    assert any("likely near-copies of training images" in m for m in messages)

    open_tab(at, "Quiz")
    by_label(at.button, "Left is real").click().run()
    assert not at.exception
    quiz = json.loads((tiny_run / "evals" / "quiz.json").read_text())
    assert quiz["latest.pt"]["total"] == 1

    open_tab(at, "Metrics")
    by_label(at.select_slider, "Generated images").set_value(100)
    by_label(at.button, "Evaluate latest.pt").click().run()
    assert not at.exception
    saved = json.loads((tiny_run / "evals" / "metrics.json").read_text())["latest.pt"]
    assert saved["n_fake"] == 100 and saved["fid"] > 0 and 0 <= saved["precision"] <= 1
    assert at.dataframe[0].value["FID"][0] == round(saved["fid"], 2)
    # The numbers come with their scale: an untrained generator and the data against itself.
    reference = json.loads((tiny_run / "evals" / "reference.json").read_text())["100"]
    assert reference["untrained"]["kid"] > reference["real_vs_real"]["kid"]
    assert any("of the way to real" in m.value for m in at.markdown)


def test_the_copying_test_per_checkpoint_against_held_out_images(runs_root, tmp_path):
    data = make_images(tmp_path / "images", 220, classes=())
    run = train_tiny_run(runs_root / "held", data, "--snapshot-kimg", "0.04")
    at = open_tab(page(REAL_VS_FAKE), "Nearest real image")
    assert any("calibrated on the held-out images" in m.value for m in [*at.success, *at.warning])
    open_tab(at, "Copying test")
    for checkpoint, detour in (("step-00000005.pt", 500), ("latest.pt", 1000)):  # the last choice counts
        by_label(at.selectbox, "Checkpoint").set_value(checkpoint).run()
        for n in (detour, 250):
            by_label(at.select_slider, "Generated images").set_value(n).run()
        by_label(at.button, f"Test {checkpoint} for copying").click().run()
        assert not at.exception
        saved = json.loads((run / "evals" / "copying.json").read_text())[checkpoint]
        assert saved["n_fake"] == n and saved["n_held_out"] == 22 and saved["c_t"] is not None
        assert any(f"C_T {saved['c_t']:.2f} over 1 region of" in m.value.replace("\\", "") for m in at.markdown)
    assert list(at.dataframe[0].value["checkpoint"]) == ["step-00000005.pt", "latest.pt"]


def test_map_page_pca(tiny_run):
    at = page(MAP, {"map": "PCA", "fake": "100"})
    assert not at.exception
    assert by_label(at.radio, "Map").value == "PCA"
    # A 24-image set offers its own size, never 2,000 real images.
    assert by_label(at.select_slider, "Real images (of 24)").options == ["24"]
    assert by_label(at.multiselect, "Checkpoints").value == ["latest.pt"]
    by_label(at.multiselect, "Checkpoints").set_value(["latest.pt", "step-00000005.pt"]).run()
    assert not at.exception


def test_map_page_umap_on_the_demo(runs_root):
    if not (DEMO / "checkpoints" / "latest.pt").exists():
        pytest.skip("no demo run in this checkout")
    shutil.copytree(DEMO, runs_root / "demo-emoji")
    at = page(MAP, {"real": "500", "fake": "100"})
    assert not at.exception
    assert by_label(at.selectbox, "Run").value == "demo-emoji" and by_label(at.radio, "Map").value == "UMAP"
