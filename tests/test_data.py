"""core.data: loading folders, zips and the built-in set; skips; fitting; the cache."""
import io
import sys
import types
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from core.data import imageset
from core.data.imageset import DataError, Skipped, load_image_set, summarize_skipped
from core.paths import BUILTIN_EMOJI

RES = 16
RED, BLUE, WHITE = (255, 0, 0), (0, 0, 255), (255, 255, 255)


@pytest.fixture(autouse=True)
def cache(tmp_path_factory, monkeypatch) -> Path:
    """Every test gets its own empty cache, never the repo's, outside the data folders."""
    folder = tmp_path_factory.mktemp("cache")
    monkeypatch.setenv("GANSCOPE_CACHE", str(folder))
    return folder


def solid(color=RED, size=(20, 20), mode="RGB") -> Image.Image:
    return Image.new(mode, size, color)


def save(image: Image.Image, path: Path, **options) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, **options)
    return path


def write_animated_gif(path: Path) -> None:
    frames = [solid(RED).convert("P"), solid(BLUE).convert("P")]
    path.parent.mkdir(parents=True, exist_ok=True)
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=100, loop=0)


def noise_jpeg_bytes() -> bytes:
    pixels = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "JPEG")
    return buffer.getvalue()


@pytest.fixture
def image_folder(tmp_path) -> Path:
    """All formats, two class folders plus one image at the root."""
    root = tmp_path / "set"
    save(solid(RED), root / "cats" / "a.png")
    save(solid(RED), root / "cats" / "b.JPG")
    save(solid(BLUE), root / "dogs" / "c.webp", lossless=True)
    save(solid(BLUE), root / "dogs" / "d.bmp")
    write_animated_gif(root / "dogs" / "e.gif")
    save(solid(RED), root / "top.png")
    return root


def zip_folder(folder: Path, target: Path, prefix: str = "") -> Path:
    with zipfile.ZipFile(target, "w") as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                archive.write(path, prefix + path.relative_to(folder).as_posix())
    return target


def assert_close(pixel, color, tolerance=8):
    assert np.abs(np.asarray(pixel, dtype=int) - color).max() <= tolerance, (pixel, color)


# --- folders ---------------------------------------------------------------------


def test_folder_of_all_formats_with_class_folders(image_folder):
    image_set = load_image_set(str(image_folder), RES)

    assert image_set.images.shape == (6, RES, RES, 3)
    assert image_set.images.dtype == np.uint8
    assert image_set.names == ["cats/a.png", "cats/b.JPG", "dogs/c.webp", "dogs/d.bmp",
                               "dogs/e.gif", "top.png"]
    assert image_set.class_names == ["(top level)", "cats", "dogs"]
    assert image_set.labels.tolist() == [1, 1, 2, 2, 2, 0]
    assert image_set.labels.dtype == np.int64
    assert image_set.skipped == []
    assert image_set.source == str(image_folder)
    assert_close(image_set.images[4, 8, 8], RED)  # the GIF's first frame, not its second
    assert_close(image_set.images[2, 8, 8], BLUE)


def test_images_only_at_the_root_have_no_labels(tmp_path):
    save(solid(RED), tmp_path / "a.png")
    save(solid(BLUE), tmp_path / "b.png")
    image_set = load_image_set(str(tmp_path / "."), RES)
    assert image_set.labels is None
    assert image_set.class_names == []


def test_recursion_labels_by_first_folder(tmp_path):
    save(solid(RED), tmp_path / "cats" / "indoor" / "deep" / "a.png")
    save(solid(RED), tmp_path / "dogs" / "b.png")
    image_set = load_image_set(str(tmp_path), RES)
    assert image_set.names == ["cats/indoor/deep/a.png", "dogs/b.png"]
    assert image_set.class_names == ["cats", "dogs"]


def test_folder_wrapping_every_image_is_not_a_class(tmp_path):
    """A zipped folder usually keeps its own name as a top folder: classes lie below it."""
    save(solid(RED), tmp_path / "faces" / "cats" / "a.png")
    save(solid(RED), tmp_path / "faces" / "dogs" / "b.png")
    image_set = load_image_set(str(tmp_path), RES)
    assert image_set.names == ["faces/cats/a.png", "faces/dogs/b.png"]
    assert image_set.class_names == ["cats", "dogs"]


def test_alpha_and_palette_transparency_composited_on_white(tmp_path):
    half = Image.new("RGBA", (20, 20), (0, 0, 0, 0))
    half.paste((255, 0, 0, 255), (0, 0, 20, 10))  # top half opaque red, bottom transparent
    save(half, tmp_path / "a_rgba.png")
    palette = solid(BLUE).convert("P")
    save(palette, tmp_path / "b_palette.png", transparency=palette.getpixel((0, 0)))
    save(Image.new("LA", (20, 20), (0, 0)), tmp_path / "c_grey_alpha.png")

    images = load_image_set(str(tmp_path), RES, fit="squash").images
    assert_close(images[0, 2, 8], RED)
    assert_close(images[0, 13, 8], WHITE)
    assert (images[1] == 255).all()
    assert (images[2] == 255).all()


def test_exif_rotation_is_applied(tmp_path):
    tall = solid(RED, (16, 32))
    exif = tall.getexif()
    exif[0x0112] = 6  # "rotate 90°": the photo is really wide
    save(tall, tmp_path / "photo.jpg", exif=exif)
    image = load_image_set(str(tmp_path), RES, fit="pad").images[0]
    assert (image[:3] == 255).all()  # white bars above and below, not at the sides
    assert_close(image[8, 1], RED)


def test_hidden_files_and_macosx_are_ignored_silently(tmp_path):
    save(solid(RED), tmp_path / "a.png")
    save(solid(RED), tmp_path / ".hidden.png")
    save(solid(RED), tmp_path / ".thumbs" / "b.png")
    save(solid(RED), tmp_path / "__MACOSX" / "._a.png")
    image_set = load_image_set(str(tmp_path), RES)
    assert image_set.names == ["a.png"]
    assert image_set.skipped == []


# --- fitting ---------------------------------------------------------------------


def wide_image() -> Image.Image:
    """48x16: blue | red | blue thirds."""
    image = solid(BLUE, (48, 16))
    image.paste(RED, (16, 0, 32, 16))
    return image


@pytest.mark.parametrize("fit", ["crop", "pad", "squash"])
def test_every_fit_gives_square_images(tmp_path, fit):
    save(wide_image(), tmp_path / "wide.png")
    save(solid(RED, (16, 40)), tmp_path / "tall.png")
    assert load_image_set(str(tmp_path), 24, fit=fit).images.shape == (2, 24, 24, 3)


def test_crop_keeps_the_centre(tmp_path):
    save(wide_image(), tmp_path / "wide.png")
    image = load_image_set(str(tmp_path), RES, fit="crop").images[0]
    assert_close(image[:, 3:-3].reshape(-1, 3).min(0), RED, tolerance=40)
    assert_close(image[:, 3:-3].reshape(-1, 3).max(0), RED, tolerance=40)


def test_pad_adds_white_bars_to_a_wide_image(tmp_path):
    save(wide_image(), tmp_path / "wide.png")
    image = load_image_set(str(tmp_path), 48, fit="pad").images[0]
    assert (image[:14] == 255).all() and (image[-14:] == 255).all()  # 16 rows of content, centred
    assert_close(image[24, 24], RED)
    assert_close(image[24, 4], BLUE)


def test_squash_keeps_all_content(tmp_path):
    save(wide_image(), tmp_path / "wide.png")
    image = load_image_set(str(tmp_path), RES, fit="squash").images[0]
    assert_close(image[8, 1], BLUE)
    assert_close(image[8, 8], RED)
    assert_close(image[8, 14], BLUE)


def test_bad_arguments_are_value_errors(image_folder):
    with pytest.raises(ValueError, match="fit"):
        load_image_set(str(image_folder), RES, fit="stretch")
    with pytest.raises(ValueError, match="res"):
        load_image_set(str(image_folder), 4)


# --- skips and errors ------------------------------------------------------------


def test_broken_files_are_skipped_with_reasons(image_folder):
    (image_folder / "cats" / "corrupt.png").write_bytes(np.random.default_rng(1).bytes(300))
    (image_folder / "cats" / "half.jpg").write_bytes(noise_jpeg_bytes()[:400])
    save(solid(RED, (10, 12)), image_folder / "dogs" / "tiny.png")
    (image_folder / "notes.txt").write_text("hello")

    image_set = load_image_set(str(image_folder), RES)

    assert len(image_set.images) == 6
    reasons = {s.name: s.reason for s in image_set.skipped}
    assert reasons["cats/corrupt.png"].startswith("cannot decode")
    assert reasons["cats/half.jpg"] == "truncated file"
    assert reasons["dogs/tiny.png"] == "too small (10x12)"
    assert reasons["notes.txt"] == "not an image"
    assert [s.name for s in image_set.skipped] == sorted(reasons)


def test_oversized_file_is_skipped_unread(image_folder, monkeypatch):
    monkeypatch.setattr(imageset, "MAX_FILE_BYTES", 1)
    with pytest.raises(DataError, match=r"6 files skipped \(6 too large\)"):
        load_image_set(str(image_folder), RES)


def test_decompression_bombs_are_skipped(tmp_path, monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 500)
    save(solid(RED, (20, 20)), tmp_path / "ok.png")  # 400 pixels
    save(solid(RED, (20, 30)), tmp_path / "warns.png")  # 600: Pillow only warns
    save(solid(RED, (40, 40)), tmp_path / "fails.png")  # 1600: Pillow raises
    image_set = load_image_set(str(tmp_path), RES)
    assert image_set.names == ["ok.png"]
    reasons = {s.name: s.reason for s in image_set.skipped}
    assert reasons == {"fails.png": "decompression bomb (1600 pixels)",
                       "warns.png": "decompression bomb (600 pixels)"}


def test_empty_folder(tmp_path):
    with pytest.raises(DataError, match="no images found in"):
        load_image_set(str(tmp_path), RES)


def test_folder_without_images_says_what_was_skipped(tmp_path):
    (tmp_path / "a.txt").write_text("a")
    (tmp_path / "b.csv").write_text("b")
    (tmp_path / "c.png").write_bytes(b"not a png")
    with pytest.raises(DataError) as error:
        load_image_set(str(tmp_path), RES)
    assert str(error.value) == (f"no usable images in {tmp_path}: "
                                "3 files skipped (2 not an image, 1 cannot decode)")


def test_missing_path(tmp_path):
    with pytest.raises(DataError, match="data path not found: .*nowhere"):
        load_image_set(str(tmp_path / "nowhere"), RES)


def test_other_file_is_not_a_source(tmp_path):
    (tmp_path / "a.txt").write_text("a")
    with pytest.raises(DataError, match="is not a folder, a .zip file or a data set version"):
        load_image_set(str(tmp_path / "a.txt"), RES)


def test_summarize_skipped():
    skipped = [Skipped("a", "not an image"), Skipped("b", "cannot decode: x"),
               Skipped("c", "not an image")]
    assert summarize_skipped(skipped) == "3 skipped (2 not an image, 1 cannot decode)"
    assert summarize_skipped([]) == "0 skipped"


# --- zip files -------------------------------------------------------------------


def test_zip_gives_the_same_set_as_the_folder(image_folder, tmp_path):
    archive = zip_folder(image_folder, tmp_path / "set.ZIP")
    from_folder = load_image_set(str(image_folder), RES, use_cache=False)
    from_zip = load_image_set(str(archive), RES, use_cache=False)
    assert from_zip.names == from_folder.names
    assert from_zip.class_names == from_folder.class_names
    np.testing.assert_array_equal(from_zip.labels, from_folder.labels)
    np.testing.assert_array_equal(from_zip.images, from_folder.images)
    assert from_zip.key == from_folder.key  # same content, same cache entry


def test_zip_ignores_folders_hidden_files_and_macosx(tmp_path):
    archive = tmp_path / "set.zip"
    png = io.BytesIO()
    solid(RED).save(png, "PNG")
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("set/", b"")
        zf.writestr("set/a.png", png.getvalue())
        zf.writestr("set/.DS_Store", b"junk")
        zf.writestr("__MACOSX/set/._a.png", b"junk")
        zf.writestr("set\\b.png", png.getvalue())  # written on Windows
    image_set = load_image_set(str(archive), RES)
    assert image_set.names == ["set/a.png", "set/b.png"]
    assert image_set.skipped == []
    assert image_set.labels is None


@pytest.mark.parametrize("entry", ["../evil.png", "/abs.png", "C:/win.png", "a\\..\\..\\b.png"])
def test_zip_with_unsafe_entry_is_refused(tmp_path, entry):
    archive = tmp_path / "bad.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("fine.png", b"x")
        zf.writestr(entry, b"x")
    with pytest.raises(DataError) as error:
        load_image_set(str(archive), RES)
    assert str(error.value) == f"unsafe entry '{entry}' in {archive}: refusing this archive"


def test_invalid_zip(tmp_path):
    (tmp_path / "broken.zip").write_bytes(b"not a zip at all")
    with pytest.raises(DataError, match="is not a valid zip file"):
        load_image_set(str(tmp_path / "broken.zip"), RES)


# --- cache -----------------------------------------------------------------------


def forbid_decoding(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("decoded although the set is cached")
    monkeypatch.setattr(Image, "open", refuse)


def test_second_load_comes_from_the_cache(image_folder, cache, monkeypatch):
    (image_folder / "notes.txt").write_text("hello")
    first = load_image_set(str(image_folder), RES)
    assert (cache / "datasets" / f"{first.key}.npz").is_file()

    forbid_decoding(monkeypatch)
    second = load_image_set(str(image_folder), RES)

    np.testing.assert_array_equal(second.images, first.images)
    np.testing.assert_array_equal(second.labels, first.labels)
    assert (second.names, second.class_names, second.skipped, second.key) == \
        (first.names, first.class_names, first.skipped, first.key)


def test_cache_hit_without_labels(tmp_path, monkeypatch):
    save(solid(RED), tmp_path / "set" / "a.png")
    save(solid(RED), tmp_path / "set" / "b.png")
    first = load_image_set(str(tmp_path / "set"), RES)
    forbid_decoding(monkeypatch)
    assert load_image_set(str(tmp_path / "set"), RES).labels is None is first.labels


def test_key_follows_content_res_and_fit(image_folder):
    key = load_image_set(str(image_folder), RES).key
    assert load_image_set(str(image_folder), RES, fit="pad").key != key
    assert load_image_set(str(image_folder), RES + 8).key != key

    save(solid(BLUE), image_folder / "cats" / "a.png")  # same name, new content
    changed = load_image_set(str(image_folder), RES)
    assert changed.key != key
    assert_close(changed.images[0, 8, 8], BLUE)


def test_corrupt_cache_is_ignored_and_rewritten(image_folder, cache):
    key = load_image_set(str(image_folder), RES).key
    cached = cache / "datasets" / f"{key}.npz"
    cached.write_bytes(b"garbage")
    again = load_image_set(str(image_folder), RES)
    assert len(again.images) == 6
    assert np.load(cached)["images"].shape == (6, RES, RES, 3)


def test_use_cache_false_neither_reads_nor_writes(image_folder, cache, monkeypatch):
    load_image_set(str(image_folder), RES, use_cache=False)
    assert not (cache / "datasets").exists()

    load_image_set(str(image_folder), RES)  # now cached ...
    forbid_decoding(monkeypatch)
    with pytest.raises(DataError, match="cannot decode"):  # ... but bypassed: decoding runs
        load_image_set(str(image_folder), RES, use_cache=False)


def test_progress_is_reported_up_to_the_total(image_folder):
    calls = []
    load_image_set(str(image_folder), RES, progress=lambda done, total: calls.append((done, total)))
    assert calls[-1][0] == calls[-1][1] > 0
    hit = []
    load_image_set(str(image_folder), RES, progress=lambda done, total: hit.append((done, total)))
    assert hit[-1] == calls[-1]


# --- built-in set ----------------------------------------------------------------


def fake_builtin(tmp_path, monkeypatch) -> types.ModuleType:
    """Stands in for core.builtin: three 64x64 emoji in two categories."""
    sheet = tmp_path / "sheet.png"
    sheet.write_bytes(b"sheet v1")
    images = np.full((3, 64, 64, 3), 255, dtype=np.uint8)
    images[1, 16:48, 16:48] = RED
    module = types.ModuleType("core.data.builtin")
    module.emoji_files = lambda: [sheet]
    module.load_emoji = lambda: types.SimpleNamespace(
        images=images, labels=np.array([0, 1, 1], dtype=np.int64),
        class_names=["faces", "food"], names=["smile", "apple", "pear"])
    monkeypatch.setitem(sys.modules, "core.data.builtin", module)
    monkeypatch.setattr(sys.modules["core.data"], "builtin", module, raising=False)
    return module


def test_builtin_source_is_resized_labelled_and_cached(tmp_path, monkeypatch):
    builtin = fake_builtin(tmp_path, monkeypatch)
    image_set = load_image_set(BUILTIN_EMOJI, 32)
    assert image_set.images.shape == (3, 32, 32, 3)
    assert_close(image_set.images[1, 16, 16], RED)
    assert image_set.labels.tolist() == [0, 1, 1]
    assert image_set.class_names == ["faces", "food"]
    assert image_set.names == ["smile", "apple", "pear"]
    assert image_set.skipped == []

    builtin.load_emoji = lambda: pytest.fail("cached set loaded again")
    assert load_image_set(BUILTIN_EMOJI, 32).key == image_set.key

    builtin.emoji_files()[0].write_bytes(b"sheet v2")
    with pytest.raises(pytest.fail.Exception):
        load_image_set(BUILTIN_EMOJI, 32)  # new bytes, new key: must load again


def test_builtin_with_missing_files_is_a_data_error(tmp_path, monkeypatch):
    builtin = fake_builtin(tmp_path, monkeypatch)
    builtin.emoji_files()[0].unlink()
    with pytest.raises(DataError, match="built-in emoji data unreadable"):
        load_image_set(BUILTIN_EMOJI, 32)


def test_builtin_emoji(monkeypatch):
    """The real built-in set, once core/data/builtin.py and data/emoji exist."""
    builtin = pytest.importorskip("core.data.builtin")
    if not all(path.is_file() for path in builtin.emoji_files()):
        pytest.skip("data/emoji files are missing")

    image_set = load_image_set(BUILTIN_EMOJI, 32)
    emoji = builtin.load_emoji()

    assert image_set.images.shape == (len(emoji.images), 32, 32, 3)
    assert image_set.images.dtype == np.uint8
    np.testing.assert_array_equal(image_set.labels, emoji.labels)
    assert image_set.class_names == list(emoji.class_names)
    assert image_set.names == list(emoji.names)
    assert image_set.source == BUILTIN_EMOJI

    monkeypatch.setattr(builtin, "load_emoji", lambda: pytest.fail("cached set loaded again"))
    again = load_image_set(BUILTIN_EMOJI, 32)
    assert again.key == image_set.key
    np.testing.assert_array_equal(again.images, image_set.images)
