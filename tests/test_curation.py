"""The Data page's rules, in core: which files a new version keeps, open duplicate groups,
skips recorded at import, previews as training sees them, and the unsafe-name rule."""
import numpy as np
import pytest
from conftest import make_images

from core.data import curate, importer
from core.data.datasets import DataRegistry
from core.data.sources import is_unsafe_name


@pytest.fixture
def ds(tmp_path):
    folder = make_images(tmp_path / "mine", 4, classes=("cats", "dogs"))
    (folder / "notes.txt").write_text("not an image")
    ds = DataRegistry(tmp_path / "sets").create("mine", "folder")
    importer.import_folder(ds, folder)
    return ds


def test_select_drops_broken_excluded_and_dropped_classes():
    files = ["cats/1.png", "cats/2.png", "dogs/3.png", "dogs/4.png", "dogs/broken.png"]
    usable = {"cats/1.png", "cats/2.png", "dogs/3.png", "dogs/4.png"}
    chosen = curate.select(files, usable, excluded={"cats/2.png", "dogs/broken.png"}, keep_classes=["cats"])
    assert chosen == curate.Selection(["cats/1.png"], broken=1, excluded=1, in_dropped_classes=2)


def test_select_without_classes_ignores_keep_classes():
    files = ["a.png", "b.png", "c.png"]
    chosen = curate.select(files, set(files), excluded={"b.png"}, keep_classes=[])
    assert chosen == curate.Selection(["a.png", "c.png"], broken=0, excluded=1, in_dropped_classes=0)


def test_open_groups_are_those_that_still_keep_two_files():
    groups = [["a", "b"], ["c", "d", "e"], ["f", "g"]]
    assert curate.open_groups(groups, {"a", "d"}) == [["c", "d", "e"], ["f", "g"]]
    assert curate.open_groups(groups, set()) == groups


def test_skips_at_import_come_back_as_name_and_reason(ds):
    assert ds.skipped_on_import() == [("notes.txt", "not an image")]


def test_duplicate_groups_and_fitted_images_of_a_data_set(ds):
    files = ds.latest().files
    assert curate.scan(ds) and curate.duplicate_groups(ds, files) == ([], [])
    images = curate.fitted_images(ds, files[:2], 16, "pad")
    assert images.shape == (2, 16, 16, 3) and images.dtype == np.uint8


@pytest.mark.parametrize("name, unsafe", [("../evil.png", True), ("/abs.png", True), ("C:/win.png", True),
                                          ("a\\..\\..\\b.png", True), ("set/a.png", False),
                                          ("..hidden/a.png", False), ("a..b.png", False)])
def test_the_unsafe_name_rule(name, unsafe):
    assert is_unsafe_name(name) is unsafe
