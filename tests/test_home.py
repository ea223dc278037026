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
