"""The landing page starts cleanly, with and without runs."""
from streamlit.testing.v1 import AppTest

from conftest import REPO


def test_home_renders_with_the_shipped_demo():
    at = AppTest.from_file(str(REPO / "Home.py"), default_timeout=60).run()
    assert not at.exception
    assert at.title[0].value == "GANscope"
    if (REPO / "checkpoints" / "demo-emoji" / "config.json").exists():
        runs = at.dataframe[0].value
        assert "demo-emoji" in list(runs["run"])


def test_home_renders_without_runs(tmp_path, monkeypatch):
    # The page reads core.paths.CHECKPOINTS_DIR; point it at an empty folder.
    import core.paths
    monkeypatch.setattr(core.paths, "CHECKPOINTS_DIR", tmp_path)
    at = AppTest.from_file(str(REPO / "Home.py"), default_timeout=60).run()
    assert not at.exception
    assert "No runs yet" in at.info[0].value


def test_runs_page_shows_a_trained_run(tmp_path, monkeypatch, image_folder):
    from conftest import TINY, run_trainer
    import core.paths
    assert run_trainer("--data", image_folder, "--out", tmp_path / "tiny", *TINY, "--kimg", "0.4").returncode == 0
    monkeypatch.setattr(core.paths, "CHECKPOINTS_DIR", tmp_path)
    at = AppTest.from_file(str(REPO / "pages" / "1_Runs.py"), default_timeout=60).run()
    assert not at.exception
    assert at.selectbox[0].value == "tiny"
    assert at.metric[0].value == "finished" and at.metric[1].value == "50"
    assert at.select_slider[0].options == ["0", "25", "50"]
    at.select_slider[0].set_value(25).run()
    assert not at.exception and at.select_slider[0].value == 25
