"""AppTest of the Data page: import a real folder, read the report, curate and save a version."""
import io

import numpy as np
from conftest import REPO, make_images, shown
from PIL import Image
from streamlit.testing.v1 import AppTest

from core.data.builtin import load_emoji
from core.data.datasets import DataRegistry

DATA = str(REPO / "pages" / "0_Data.py")


def app():
    return AppTest.from_file(DATA, default_timeout=120)


def button(at, label_start):
    return next(b for b in at.button if b.label.startswith(label_start))


def open_tab(at, name):
    """Only the open tab runs; its choice is kept in session state (and the URL)."""
    at.session_state["data-tab"] = name
    return at.run()


def import_folder(at, name, folder):
    at.text_input[0].set_value(name)
    at.text_input[1].set_value(str(folder))
    return button(at, "Import").click().run()


def test_no_data_sets_yet():
    at = app().run()
    assert not at.exception
    assert [t.label for t in at.tabs] == ["Import", "Report", "Curate"]
    assert at.sidebar.selectbox[0].value == "➕ New data set"
    open_tab(at, "Report")
    assert any("Import images first" in i.value for i in at.info)


def test_import_errors_are_clear_and_save_nothing(tmp_path):
    at = app().run()
    at.text_input[0].set_value("../escape")
    at.text_input[1].set_value(str(tmp_path / "images"))
    button(at, "Import").click().run()
    assert "Invalid data set name" in at.error[0].value
    at.text_input[0].set_value("mine")
    button(at, "Import").click().run()
    assert "Folder not found" in at.error[0].value
    assert DataRegistry().all() == []  # a failed first import leaves no empty data set behind
    at.text_input[1].set_value(str(make_images(tmp_path / "images", 3)))
    button(at, "Import").click().run()  # so the retry with the right folder is not "already exists"
    assert not at.error and at.success[0].value.startswith("Added 3 images to mine")


def test_import_report_curate_and_save_a_version(tmp_path):
    folder = make_images(tmp_path / "images", 10)
    (folder / "a" / "dup.png").write_bytes((folder / "a" / "img000.png").read_bytes())
    (folder / "b" / "junk.png").write_bytes(b"not really a png")
    at = import_folder(app().run(), "blobs", folder)
    assert not at.exception
    assert at.success[0].value.startswith("Added 11 images to blobs (now version v1)")
    assert shown(at.expander[0].label) == "1 skipped (1 cannot decode)"  # the junk file, with its reason
    assert at.sidebar.selectbox[0].value == "blobs"

    open_tab(at, "Report")
    metrics = {m.label: m.value for m in at.metric}
    assert (metrics["Files"], metrics["Usable images"], metrics["Skipped or broken"]) == ("11", "11", "1")
    assert "PNG 11" in at.caption[1].value or any("PNG 11" in c.value for c in at.caption)

    # One identical pair: exclude the copy with one click, then drop class "b" and save.
    open_tab(at, "Curate")
    dedupe = button(at, "Exclude 1 (keep the best")
    dedupe.click().run()
    assert not at.exception
    at.multiselect[0].set_value(["a"]).run()
    next(r for r in at.radio if r.label == "Crop mode").set_value("pad").run()
    summary = next(m.value for m in at.markdown if "images kept" in m.value)
    assert summary.startswith("**5** of 11 images kept") and "1 excluded" in summary and "5 in dropped" in summary
    button(at, "Save as v2").click().run()
    assert not at.exception

    v2 = DataRegistry().get("blobs").latest()
    assert (v2.number, v2.fit, len(v2.files)) == (2, "pad", 5)
    assert all(f.startswith("a/") for f in v2.files) and len(set(v2.files) & {"a/dup.png", "a/img000.png"}) == 1
    assert len(DataRegistry().get("blobs").file_names()) == 11  # excluded files stay: nothing deleted


def test_hand_picked_exclusions_go_into_the_version(tmp_path):
    folder = make_images(tmp_path / "images", 6, classes=())
    at = open_tab(import_folder(app().run(), "six", folder), "Curate")
    keep = [c for c in at.checkbox if c.label == "keep"]
    assert len(keep) == 6
    keep[0].uncheck().run()
    button(at, "Save as v2").click().run()
    assert len(DataRegistry().get("six").latest().files) == 5


def test_uploaded_images_via_the_core_show_in_the_report(tmp_path):
    """(AppTest cannot drive st.file_uploader; the upload path itself is tested in test_datasets.)"""
    from core.data import importer
    buf = io.BytesIO()
    Image.fromarray(np.full((30, 20, 3), 90, np.uint8)).save(buf, "JPEG")
    ds = DataRegistry().create("uploads", "upload")
    importer.import_uploads(ds, [("tall.jpg", buf.getvalue())])
    at = app()
    at.query_params["set"] = "uploads"
    at.query_params["data-tab"] = "Report"
    at.run()
    assert not at.exception
    assert at.sidebar.selectbox[0].value == "uploads"
    assert {m.label: m.value for m in at.metric}["Square"] == "0 / 1"


def test_outliers_are_ranked_and_excluded_in_one_click(tmp_path):
    emoji = load_emoji()
    folder = tmp_path / "faces"
    folder.mkdir()
    faces = [i for i, c in enumerate(emoji.labels) if emoji.class_names[c] == "Smileys & Emotion"][:8]
    for i in faces:
        Image.fromarray(emoji.images[i]).save(folder / f"{emoji.names[i]}.png")
    noise = np.random.default_rng(0).integers(0, 256, (40, 48, 3), dtype=np.uint8)
    Image.fromarray(noise).save(folder / "zz-noise.png")
    at = open_tab(import_folder(app().run(), "odd", folder), "Curate")
    button(at, "Rank outliers").click().run()
    assert not at.exception
    caption = next(c for image in at.get("image") for c in image.captions if "most unusual first" in c)
    assert shown(caption).startswith("most unusual first: zz-noise.png")
    at.slider[0].set_value(4).run()
    button(at, "Exclude these 4").click().run()
    summary = next(m.value for m in at.markdown if "images kept" in m.value)
    assert summary.startswith("**5** of 9 images kept")
    button(at, "Save as v2").click().run()
    assert "zz-noise.png" not in DataRegistry().get("odd").latest().files


def test_switching_to_a_new_data_set_sticks(tmp_path):
    from core.data import importer
    importer.import_folder(DataRegistry().create("first", "folder"), make_images(tmp_path / "i", 3))
    at = app()
    at.query_params["set"] = "first"
    at.run()
    assert at.sidebar.selectbox[0].value == "first"
    at.sidebar.selectbox[0].set_value("➕ New data set").run()
    at.run()  # and it stays there on the next rerun
    assert at.sidebar.selectbox[0].value == "➕ New data set"
    assert at.text_input[0].label == "Name of the new data set"
