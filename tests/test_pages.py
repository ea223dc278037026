"""AppTest of Home and the Training page over real run folders and real trainer processes."""
import shutil

import pytest
from conftest import REPO, TINY, make_images, run_trainer, shown, wait_for
from streamlit.testing.v1 import AppTest

from core.runs.registry import Registry

HOME = str(REPO / "Home.py")
TRAINING = str(REPO / "pages" / "1_Training.py")
DEMO = REPO / "checkpoints" / "demo-emoji"


@pytest.fixture
def finished_run(runs_root, tmp_path):
    data = make_images(tmp_path / "images", 12)
    assert run_trainer("--data", data, "--out", runs_root / "tiny", *TINY, "--kimg", "0.4").returncode == 0
    return "tiny"


def app(path, tab=None):
    at = AppTest.from_file(path, default_timeout=60)
    if tab:
        at.query_params["tab"] = tab  # the Training page's tabs are linked to the URL
    return at


def test_home_without_runs(runs_root):
    at = app(HOME).run()
    assert not at.exception
    assert at.title[0].value == "GANscope"
    assert "No runs yet" in at.info[0].value
    assert at.button[0].label.startswith("Train on the built-in emoji set")


def test_home_lists_the_demo_run(runs_root):
    if not (DEMO / "config.json").exists():
        pytest.skip("no demo run in this checkout")
    shutil.copytree(DEMO, runs_root / "demo-emoji")
    at = app(HOME).run()
    assert not at.exception
    table = at.dataframe[0].value
    # Each run name links to its monitor; its data is named in a few words, not a long path.
    assert list(table["run"]) == ["Training?run=demo-emoji"] and table["state"][0] == "✅ finished"
    assert table["data"][0] == "built-in emoji"


def test_training_page_without_runs(runs_root):
    at = app(TRAINING).run()
    assert not at.exception
    assert [t.label for t in at.tabs] == ["Monitor", "New run", "Compare"]
    assert "No runs yet" in at.info[0].value


def test_training_page_shows_a_finished_run(finished_run):
    at = app(TRAINING).run()
    assert not at.exception
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["State"] == "finished" and metrics["Step"] == "50" and metrics["kimg"] == "0.40"
    labels = [b.label for b in at.button]
    assert "Resume" in labels and "Stop" not in labels
    assert at.select_slider[0].options == ["0", "25", "50"]  # every saved grid
    at.select_slider[0].set_value(25).run()
    assert not at.exception


def test_training_page_monitors_and_stops_a_live_run(runs_root, tmp_path):
    data = make_images(tmp_path / "images", 12)
    registry = Registry(runs_root)
    registry.start("live", {"data": str(data), "kimg": 1000, "recipe": "small-data", "res": 32, "batch": 8,
                            "channels": 8, "log_every": 5, "threads": 1})
    wait_for(lambda: registry.get("live").state == "running" and registry.get("live").folder.metrics_file.exists(),
             what="running with metrics")
    at = app(TRAINING).run()
    assert not at.exception
    assert {m.label: m.value for m in at.metric}["State"] == "running"
    by_label(at.button, "Stop").click().run()
    assert not at.exception
    assert registry.get("live").state == "stopped"
    assert {m.label: m.value for m in at.metric}["State"] == "stopped"


def by_label(elements, label):
    return next(e for e in elements if e.label == label)


def _launch(at, **fields):
    """Fill the New run form and press Launch; returns the error messages shown."""
    if "source" in fields:
        by_label(at.radio, "Data").set_value(fields["source"]).run()
    if "folder" in fields:
        by_label(at.text_input, "Folder path").set_value(fields["folder"])
    if "cond" in fields:
        next(c for c in at.checkbox if c.label.startswith("Class-conditional")).set_value(fields["cond"])
    for label in ("Batch size", "Length (kimg)"):
        if label in fields:
            by_label(at.number_input, label).set_value(fields[label])
    if "seed" in fields:
        by_label(at.text_input, "Seed").set_value(fields["seed"])
    by_label(at.text_input, "Run name").set_value(fields.get("name", "ok-name"))
    by_label(at.button, "Launch").click().run()
    return [shown(e.value) for e in at.error]


def test_new_run_form_validation(runs_root, finished_run, tmp_path):
    at = app(TRAINING, "New run").run()
    assert any("Invalid run name '../escape'" in e for e in _launch(at, name="../escape"))
    assert any("already exists" in e for e in _launch(at, name=finished_run))
    at = app(TRAINING, "New run").run()
    assert "Enter the path of a folder" in _launch(at, source="Folder on this machine", folder="")[0]
    assert "Folder not found" in _launch(at, source="Folder on this machine", folder=str(tmp_path / "nope"))[0]
    empty = tmp_path / "no-images"
    empty.mkdir()
    (empty / "readme.txt").write_text("hi")
    assert "No images" in _launch(at, source="Folder on this machine", folder=str(empty))[0]
    flat = make_images(tmp_path / "flat", 3, classes=())
    errors = _launch(at, source="Folder on this machine", folder=str(flat), cond=True)
    assert any("needs labels" in e for e in errors)
    # Out-of-range numbers are refused with their reason (the trainer's own rulebook), not silently replaced.
    for fields, message in (({"Batch size": 1}, "Batch size must be from 2"),
                            ({"Batch size": 100_000}, "Batch size must be from 2"),
                            ({"Length (kimg)": 1e12}, "Length must be more than 0 and at most 100,000 kimg"),
                            ({"seed": "100000000000000000000"}, "Seed must be from 0"),
                            ({"seed": "1.5"}, "Seed must be a whole number")):
        at = app(TRAINING, "New run").run()
        errors = _launch(at, **fields)
        assert any(message in e for e in errors), (fields, errors)
    assert Registry(runs_root).runs()[0].name == finished_run and len(Registry(runs_root).runs()) == 1


def test_new_run_form_launches_a_run(runs_root, tmp_path):
    data = make_images(tmp_path / "imgs", 8)
    at = app(TRAINING, "New run").run()
    errors = _launch(at, source="Folder on this machine", folder=str(data), name="from-form")
    assert errors == []
    # The page switches to the new run's monitor and says it started.
    assert by_label(at.selectbox, "Run").value == "from-form"
    assert any("Started **from-form**" in shown(m.value) for m in at.success)
    registry = Registry(runs_root)
    run = registry.get("from-form")
    assert run.active
    wait_for(lambda: registry.get("from-form").config.get("data") == str(data), what="config")
    config = registry.get("from-form").config
    assert config["threads"] >= 1  # CPU runs leave a core to the app
    assert (config["recipe"], config["arch"], config["disc"]) == ("projected", "fastgan", "projected")  # the default
    assert registry.stop("from-form").state in ("stopped", "failed")


def test_new_run_forms_batch_follows_the_recipe_and_the_picks_stay(runs_root):
    at = app(TRAINING, "New run").run()
    recipe, batch = (lambda: by_label(at.selectbox, "Recipe").value), (lambda: by_label(at.number_input,
                                                                                        "Batch size").value)
    assert (recipe(), batch()) == ("projected", 16)
    for name, expected in (("small-data", 64), ("tutorial", 128), ("projected", 16), ("small-data", 64)):
        by_label(at.selectbox, "Recipe").set_value(name).run()  # several changes in a row: each one counts
        assert (recipe(), batch()) == (name, expected), name
    for res in (32, 128, 64):  # the user's pick stays when the size changes
        by_label(at.selectbox, "Resolution").set_value(res).run()
        assert (recipe(), batch()) == ("small-data", 64), res
    by_label(at.number_input, "Batch size").set_value(24).run()
    by_label(at.selectbox, "Recipe").set_value("tutorial").run()
    assert (recipe(), batch()) == ("tutorial", 24)  # an edited batch is the user's
    assert not at.exception


def test_new_run_form_offers_data_set_versions(runs_root, tmp_path):
    from core.data import importer
    from core.data.datasets import DataRegistry
    at = app(TRAINING, "New run").run()
    assert "Pick a data set version" in _launch(at, source="A data set from the Data page")[0]
    assert any("No data sets yet" in i.value for i in at.info)

    ds = DataRegistry().create("blobs", "folder")
    v1 = importer.import_folder(ds, make_images(tmp_path / "imgs", 6)).version
    v2 = ds.save_version(v1.files[:4], "pad", note="four")
    at = app(TRAINING, "New run").run()
    by_label(at.radio, "Data").set_value("A data set from the Data page").run()
    choice = by_label(at.selectbox, "Data set and version")
    assert choice.value == str(v2.path)  # newest first
    assert choice.options == ["blobs · v2 · 4 images · pad · four", "blobs · v1 · 6 images · crop · import of 6 from folder"]
    assert by_label(at.text_input, "Run name").value.startswith("blobs-64px-")
