"""Hostile input in the app (issue 16), each kept as a test.

- Names from files and users are shown as text: a zip member, data set file, checkpoint,
  run or direction named like a Markdown link or image renders no link and loads nothing.
- Crafted links (?psi=2, ?seed=-1...) show one warning and the default view, never a traceback.
- Two tabs writing the same run file at once lose nothing.

No test here trains: runs are copies of the shipped demo run, or crafted checkpoints.
"""
import json
import re
import shutil
import threading
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import REPO
from PIL import Image
from streamlit.testing.v1 import AppTest

from core import atomic, checkpoint
from core.evaluation import evaluate
from core.explore import latent
from ui.links import WARNING
from ui.text import plain, sentence

PAGES = REPO / "pages"
DATA, TRAINING, LAB = PAGES / "0_Data.py", PAGES / "1_Training.py", PAGES / "2_Latent_Lab.py"
REAL_VS_FAKE, MAP = PAGES / "3_Real_vs_Fake.py", PAGES / "4_Map.py"
DEMO = REPO / "checkpoints" / "demo-emoji"

LINK = "[Archive damaged: click here](https://evil.example/fix)"
IMAGE = "![](https://evil.example/b.gif)"
ZIP_MEMBER = f"{LINK}/../x.png"
# What else Streamlit's Markdown would render: HTML, an entity, LaTeX, emphasis, a colour directive.
MARKUP = ["<img src=https://evil.example/b.gif>", "&lt;b&gt;", "$x^2$", "**loud**", ":red[alarm]", "# big",
          "- item", "`code`", "a\\[b"]


# -- helpers ---------------------------------------------------------------------------

def page(path, query=None, timeout=120) -> AppTest:
    at = AppTest.from_file(str(path), default_timeout=timeout)
    for k, v in (query or {}).items():
        at.query_params[k] = v
    return at.run()


def live_markup(text: str) -> bool:
    """Whether Markdown would make more than text of it: a link, an image, HTML, an entity or
    LaTeX outside backslash escapes."""
    bare = re.sub(r"\\.", "", text, flags=re.S)
    return bool(re.search(r"\]\(|!\[|<[A-Za-z/!]|&#?\w+;|\$", bare))


def shown_as_markdown(at: AppTest) -> list[str]:
    """Every text of the page that Streamlit renders as Markdown."""
    texts = [e.value for kind in ("markdown", "caption", "error", "warning", "info", "success", "toast", "title",
                                  "header", "subheader") for e in at.get(kind)]
    for kind in ("slider", "select_slider", "selectbox", "multiselect", "radio", "number_input", "text_input",
                 "text_area", "checkbox", "toggle", "button"):
        for w in at.get(kind):
            texts += [w.label, getattr(w, "help", "") or ""]
            if kind in ("radio", "select_slider"):  # their options are Markdown too
                texts += [str(o) for o in w.options]
    texts += [c for i in at.get("image") for c in i.captions]
    texts += [t for m in at.get("metric") for t in (m.label, m.value)]
    texts += [p.text for p in at.get("progress")] + [e.label for e in at.get("expander")]
    return [t for t in texts if t]


def assert_shown_as_text(at: AppTest, *names: str) -> None:
    """Each name is on the page, escaped, and nothing on the page that quotes it is live markup."""
    shown = shown_as_markdown(at)
    for name in names:
        assert any(plain(name) in t for t in shown), f"{name!r} is not shown (escaped) on the page"
    quoting = [t for t in shown if "evil" in t]
    assert quoting and not [t for t in quoting if live_markup(t)], quoting


def warnings_of(at: AppTest) -> list[str]:
    return [w.value for w in at.warning]


@pytest.fixture
def demo(runs_root) -> Path:
    """The shipped demo run (an exported 64 px emoji generator), copied into the runs root."""
    if not (DEMO / "checkpoints" / "latest.pt").exists():
        pytest.skip("no demo run in this checkout")
    return Path(shutil.copytree(DEMO, runs_root / DEMO.name))


@pytest.fixture
def cond_run(runs_root) -> Path:
    """A run with an untrained class-conditional generator (one class per emoji category, so
    its classes match the run's data): a crafted checkpoint instead of a training run."""
    if not (DEMO / "config.json").exists():
        pytest.skip("no demo run in this checkout")
    from core.data.builtin import load_emoji
    from core.networks import build_generator, model_spec
    run = Path(shutil.copytree(DEMO, runs_root / "cond"))
    classes = load_emoji().class_names
    spec = model_spec("dcgan", 32, 16, 8, n_classes=len(classes))
    torch.manual_seed(0)
    checkpoint.save(run / "checkpoints" / "latest.pt", {"model": spec, "G_ema": build_generator(spec).state_dict(),
                                                        "counters": {"step": 0, "nimg": 0}, "class_names": classes})
    return run


# -- 6. names shown as text -------------------------------------------------------------

@pytest.mark.parametrize("text", [LINK, IMAGE, ZIP_MEMBER, *MARKUP])
def test_plain_leaves_no_markup_and_loses_no_character(text):
    escaped = plain(text)
    assert not live_markup(escaped)
    assert re.sub(r"\\(.)", r"\1", escaped) == text  # every character is still there, as itself
    assert not live_markup(sentence(ValueError(f"unsafe entry '{text}' in a.zip")))


def z_dim_of(run: Path) -> int:
    return json.loads((run / "config.json").read_text())["z_dim"]


def test_directions_named_like_links_stay_names(demo, runs_root):
    for name in (LINK, IMAGE):
        latent.save_direction(demo, name, torch.ones(z_dim_of(demo)))
    # Run names cannot be links: the registry lists only plain folder names.
    shutil.copytree(DEMO, runs_root / "[x](https:evil.example)")
    at = page(LAB)
    assert not at.exception
    assert at.selectbox(key="run").options == [DEMO.name]
    assert [at.slider(key=f"dir-{n}").label for n in (LINK, IMAGE)] == [plain(LINK), plain(IMAGE)]
    assert_shown_as_text(at, LINK, IMAGE)


def test_a_direction_saved_on_the_page_is_confirmed_as_a_name(demo):
    at = page(LAB)
    at.multiselect(key="more").set_value([0])
    at.multiselect(key="less").set_value([1])
    at.text_input(key="direction-name").set_value(LINK)
    next(b for b in at.button if b.label == "Save direction").click().run()
    assert not at.exception
    assert at.success and plain(LINK) in at.success[0].value
    assert LINK in json.loads((demo / latent.DIRECTIONS_FILE).read_text())
    assert_shown_as_text(at, LINK)


def test_typed_seeds_are_quoted_as_text(demo):
    at = page(LAB)
    at.text_input(key="keys").set_value(IMAGE).run()
    assert not at.exception and at.error
    assert_shown_as_text(at, IMAGE[:40])


def test_a_checkpoint_naming_a_link_is_refused_in_plain_words(demo):
    path = demo / "checkpoints" / "latest.pt"
    ckpt = checkpoint.load(path)
    ckpt["model"]["arch"] = LINK
    checkpoint.save(path, {k: v for k, v in ckpt.items() if k != "format"})
    at = page(LAB)
    assert not at.exception
    assert "Cannot load" in at.error[0].value and "unknown architecture" in at.error[0].value
    assert_shown_as_text(at, LINK)


@pytest.mark.parametrize("path", [REAL_VS_FAKE, MAP], ids=["real-vs-fake", "map"])
def test_training_data_with_a_zip_member_named_like_a_link(demo, tmp_path, path):
    """The run's data became a zip with the issue's member name: the page explains, in text."""
    archive = tmp_path / "faces.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr(ZIP_MEMBER, b"not an image")
    config = json.loads((demo / "config.json").read_text())
    (demo / "config.json").write_text(json.dumps({**config, "data": str(archive)}))
    at = page(path)
    assert not at.exception
    assert "cannot be loaded" in at.error[0].value
    assert_shown_as_text(at, ZIP_MEMBER)


def import_folder(tmp_path, names: list[str]) -> AppTest:
    """A data set imported on the Data page from a folder holding `names` (PNGs; the first two
    are the same picture), opened on its Curate tab."""
    folder = tmp_path / "to-import"
    folder.mkdir()
    rng = np.random.default_rng(0)
    pictures = [rng.integers(0, 255, (40, 40, 3), dtype=np.uint8) for _ in names]
    for i, name in enumerate(names):
        Image.fromarray(pictures[0 if i < 2 else i]).save(folder / name, format="PNG")
    at = page(DATA)
    at.text_input(key="new-set-name").set_value("hostile")
    at.text_input(key="import-folder").set_value(str(folder))
    next(b for b in at.button if b.label == "Import").click().run()
    assert not at.exception, at.exception
    at.session_state["data-tab"] = "Curate"
    return at.run()


# Folder names cannot hold "/": these are the issue's names with "https:" for "https://".
FILE_LINK = "[Archive damaged: click here](https:evil.example).png"
FILE_IMAGE = "![](https:evil.example%2Fb.gif).png"


def test_a_data_set_file_named_like_a_link_stays_a_name_when_picking_by_hand(tmp_path):
    at = import_folder(tmp_path, [FILE_LINK, "same.png", FILE_IMAGE])
    assert not at.exception
    captions = [c.value for c in at.caption if "evil" in c.value]
    assert sorted(captions) == sorted([plain(FILE_LINK), plain(FILE_IMAGE)])
    assert not [c for c in captions if live_markup(c)]


def test_a_data_set_file_named_like_a_link_stays_a_name_everywhere_on_the_data_page(tmp_path):
    at = import_folder(tmp_path, [FILE_LINK, "same.png", FILE_IMAGE])
    assert not at.exception
    assert_shown_as_text(at, FILE_LINK, FILE_IMAGE)


# -- 7. crafted links ------------------------------------------------------------------------

# The issue's links under the parameter names the Latent Lab uses: the edit sliders are
# sefa1..8 / ganspace1..8, raw dimensions dims + z<k>, the class "class", the keyframes "keys".
LAB_LINKS = {
    "psi": ({"psi": "2"}, "slider", "psi", 1.0),
    "psi-nan": ({"psi": "nan"}, "slider", "psi", 1.0),
    "frames": ({"frames": "40"}, "slider", "frames", 8),
    "seed": ({"seed": "-1"}, "number_input", "seed", 0),
    "seed-huge": ({"seed": "18446744073709551616"}, "number_input", "seed", 0),
    "seed-fraction": ({"seed": "2.5"}, "number_input", "seed", 0),
    "grid": ({"grid": "4294967295"}, "number_input", "grid", 0),
    "edits": ({"sefa1": "7"}, "slider", "sefa1", 0.0),
    "raw": ({"dims": "999", "z999": "1"}, "multiselect", "dims", []),
    "keys": ({"keys": "1,18446744073709551616"}, "text_input", "keys", "0, 1"),
    "method": ({"method": "PCA"}, "radio", "method", "SeFa"),
    "net": ({"net": "G"}, "radio", "net", "G_ema"),  # the demo is exported: G_ema only
    "run": ({"run": "../demo-emoji"}, "selectbox", "run", DEMO.name),
    "ckpt": ({"ckpt": "../../etc/passwd"}, "selectbox", "ckpt", "latest.pt"),
}


@pytest.mark.parametrize("case", list(LAB_LINKS))
def test_a_crafted_latent_lab_link_shows_the_default_view(demo, case):
    query, kind, key, default = LAB_LINKS[case]
    at = page(LAB, query)
    assert not at.exception
    assert warnings_of(at) == [WARNING]
    assert getattr(at, kind)(key=key).value == default
    assert not at.error  # the page is whole: no "seeds go from..." for the link's keyframes


def test_a_crafted_class_in_a_latent_lab_link(cond_run):
    at = page(LAB, {"class": "-3"})
    assert not at.exception and warnings_of(at) == [WARNING]
    select = at.selectbox(key="class")
    assert select.value == select.options[0]


def test_the_issue_s_own_parameter_names_are_ignored(demo):
    at = page(LAB, {"edits": "0:7", "raw": "999:1", "cls": "-3"})  # no widget has these names
    assert not at.exception and not warnings_of(at)


def test_a_good_link_still_restores_the_view_without_a_warning(demo):
    at = page(LAB, {"psi": "0.5", "dims": ["3", "7"], "z3": "-1.5", "frames": "12", "keys": "4, 5, 6",
                    "method": "GANSpace", "ganspace2": "2"})
    assert not at.exception and not warnings_of(at)
    assert at.slider(key="psi").value == 0.5 and at.multiselect(key="dims").value == [3, 7]
    assert at.slider(key="z3").value == -1.5 and at.slider(key="ganspace2").value == 2.0
    assert at.slider(key="frames").value == 12 and at.text_input(key="keys").value == "4, 5, 6"


def test_crafted_real_vs_fake_links(cond_run):
    at = page(REAL_VS_FAKE, {"count": "7", "compare-class": "-3", "compare-tab": "Nope"})
    assert not at.exception and warnings_of(at) == [WARNING]
    assert at.select_slider(key="count").value == 32 and at.selectbox(key="compare-class").value == "all"
    assert at.session_state["compare-tab"] == "Side by side"
    at = page(REAL_VS_FAKE, {"compare-tab": "Metrics", "eval-n": "3"})
    assert not at.exception and warnings_of(at) == [WARNING]
    assert at.select_slider(key="eval-n").value == 1000


def test_crafted_map_links(demo, monkeypatch):
    import streamlit as st

    import ui.embedding
    monkeypatch.setattr(ui.embedding, "real_features", lambda *a, **k: st.stop())  # the sidebar is what counts
    at = page(MAP, {"ckpts": "nope.pt", "map": "tSNE", "real": "3", "fake": "7", "colour": "x"})
    assert not at.exception and warnings_of(at) == [WARNING]
    assert at.multiselect(key="ckpts").value == ["latest.pt"] and at.radio(key="map").value == "UMAP"
    assert at.select_slider(key="fake").value == 500 and at.radio(key="colour").value == "source"
    real = at.select_slider(key="real")
    assert str(real.value) == real.options[-1]


def test_crafted_training_monitor_links(demo):
    at = page(TRAINING, {"tab": "Nope", "run": "nope"})
    assert not at.exception and warnings_of(at)[0] == WARNING  # (the health check may add its own below)
    assert at.session_state["tab"] == "Monitor" and at.selectbox(key="run").value == DEMO.name


# -- 18. two tabs writing the same file ------------------------------------------------------

def in_two_threads(work) -> None:
    """work(0) and work(1) at the same time."""
    threads = [threading.Thread(target=work, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads)


def test_two_tabs_saving_directions_lose_none(tmp_path):
    in_two_threads(lambda tab: [latent.save_direction(tmp_path, f"tab{tab}-{i}", torch.ones(4)) for i in range(50)])
    assert sorted(latent.load_directions(tmp_path)) == sorted(f"tab{t}-{i}" for t in range(2) for i in range(50))


def test_two_tabs_answering_the_quiz_lose_no_answer(tmp_path):
    in_two_threads(lambda tab: [evaluate.record_quiz(tmp_path, "latest.pt", tab, 1) for _ in range(50)])
    assert evaluate.load_quiz(tmp_path)["latest.pt"] == {"correct": 50, "total": 100, "error_rate": 0.5}


def test_update_json_serialises_writers(tmp_path):
    target = tmp_path / "evals" / "metrics.json"
    in_two_threads(lambda tab: [atomic.update_json(target, lambda d, k=f"{tab}-{i}": {**d, k: i})
                                for i in range(50)])
    assert len(json.loads(target.read_text())) == 100


def test_the_app_refuses_to_serve_beyond_this_machine_uninvited(runs_root, monkeypatch):
    from streamlit import config

    from ui.guard import is_loopback
    assert all(map(is_loopback, ["127.0.0.1", "::1", "localhost", "127.0.0.2"]))
    assert not any(map(is_loopback, ["0.0.0.0", None, "", "192.168.1.5", "example.org"]))
    before = config.get_option("server.address")
    config.set_option("server.address", "0.0.0.0")
    try:
        for page in ("Home.py", "pages/1_Training.py", "pages/2_Latent_Lab.py"):
            at = AppTest.from_file(str(REPO / page), default_timeout=60).run()
            assert not at.exception and any("refusing to work" in e.value for e in at.error), page
            assert not at.button  # nothing to click: no run can be started or deleted
        monkeypatch.setenv("GANSCOPE_ALLOW_REMOTE", "1")
        at = AppTest.from_file(str(REPO / "Home.py"), default_timeout=60).run()
        assert not at.exception and not at.error and at.button
    finally:
        config.set_option("server.address", before)


# -- damaged files the pages read ------------------------------------------------------------

def test_damaged_directions_are_left_out_and_the_lab_still_edits(demo):
    z = z_dim_of(demo)
    latent.save_direction(demo, "good", torch.ones(z))
    saved = json.loads((demo / latent.DIRECTIONS_FILE).read_text())
    saved.update({"short": {"vector": [1.0, 2.0]}, "text": {"vector": "abc"}, "nan": {"vector": [float("nan")] * z},
                  "nested": {"vector": [[1.0] * z]}, "novector": {}, "list": [1, 2]})
    (demo / latent.DIRECTIONS_FILE).write_text(json.dumps(saved))
    assert list(latent.load_directions(demo, z)) == ["good"]
    at = page(LAB)
    assert not at.exception
    for amount in (1.0, -2.0):  # the editor keeps working with the one good direction
        at.slider(key="dir-good").set_value(amount).run()
        assert not at.exception and at.slider(key="dir-good").value == amount
    (demo / latent.DIRECTIONS_FILE).write_text("{not json")
    assert latent.load_directions(demo, z) == {}
    assert not page(LAB).exception
    latent.save_direction(demo, "again", torch.ones(z))  # saving still works; the damaged file is kept aside
    assert list(latent.load_directions(demo, z)) == ["again"]
    assert (demo / (latent.DIRECTIONS_FILE + ".damaged")).read_text() == "{not json"


def test_damaged_evaluation_files_show_what_is_intact(demo):
    evals = demo / evaluate.EVALS
    evals.mkdir(exist_ok=True)
    good_ref = {"real_vs_real": {"fid": 5.0, "kid": 0.001}, "untrained": {"fid": 400.0, "kid": 0.5}}
    (evals / "reference.json").write_text(json.dumps({"1000": good_ref, "abc": good_ref, "²": good_ref,
                                                      "500": {"untrained": "x"}}))
    good = {"checkpoint": "latest.pt", "kimg": 1.0, "n_fake": 1000, "fid": 50.0, "kid": 0.05, "kid_se": 0.001,
            "precision": 0.5, "recall": 0.5, "density": 0.5, "coverage": 0.5}
    (evals / "metrics.json").write_text(json.dumps({"latest.pt": good, "bad.pt": {**good, "fid": "high"},
                                                    "odd.pt": [1]}))
    (evals / "quiz.json").write_text(json.dumps({"latest.pt": {"correct": "x", "total": 2}}))
    assert list(evaluate.load_reference(demo)) == ["1000"]
    assert list(evaluate.load_evaluations(demo)) == ["latest.pt"]
    assert evaluate.load_quiz(demo) == {}
    at = page(REAL_VS_FAKE, {"compare-tab": "Metrics"})
    assert not at.exception
    assert any("latest.pt" in str(df.value) for df in at.dataframe)
    assert any("1000 images: untrained FID 400.0" in c.value for c in at.caption)
    (evals / "quiz.json").write_text(json.dumps({"latest.pt": {"correct": 3, "total": 0, "error_rate": None}}))
    assert evaluate.load_quiz(demo) == {}
    assert evaluate.record_quiz(demo, "latest.pt", 1, 2) == {"correct": 1, "total": 2, "error_rate": 0.5}
    for name in ("reference.json", "metrics.json", "quiz.json"):
        (evals / name).write_text("[1, 2")
    assert not page(REAL_VS_FAKE, {"compare-tab": "Metrics"}).exception
    assert evaluate.record_quiz(demo, "latest.pt", 2, 2)["total"] == 2  # answers still count
    assert (evals / "quiz.json.damaged").read_text() == "[1, 2"
