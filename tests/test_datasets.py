"""Registered data sets: imports from a folder, zip, uploads and URLs; report; curation; versions."""
import io
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO, make_images
from PIL import Image

from core.data import curate, importer
from core.data.builtin import load_emoji
from core.data.datasets import DataRegistry, DataSetError
from core.data.imageset import load_image_set
from core.training.config import resolve

LOCAL = ["127.0.0.1/32"]  # the test server's address: the URL import refuses it by default


def png_bytes(pixels: np.ndarray, fmt="PNG", **save) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, fmt, **save)
    return buf.getvalue()


@pytest.fixture(scope="module")
def emoji():
    return load_emoji()


@pytest.fixture
def registry(tmp_path):
    return DataRegistry(tmp_path / "sets")


def snapshot(folder: Path) -> dict:
    return {p.relative_to(folder).as_posix(): (p.read_bytes(), p.stat().st_mtime_ns)
            for p in folder.rglob("*") if p.is_file()}


def test_folder_import_copies_files_registers_the_set_and_leaves_originals_alone(registry, tmp_path):
    folder = make_images(tmp_path / "mine", 6)
    (folder / "notes.txt").write_text("not an image")
    (folder / "a" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 100)
    before = snapshot(folder)

    ds = registry.create("mine", "folder")
    result = importer.import_folder(ds, folder)

    assert snapshot(folder) == before  # originals untouched
    assert sorted(result.added) == sorted(f"{c}/img{i:03d}.png" for i, c in zip(range(6), "ababab"))
    assert dict(result.skipped) == {"notes.txt": "not an image",
                                    "a/broken.png": dict(result.skipped)["a/broken.png"]}
    assert "decode" in dict(result.skipped)["a/broken.png"]
    for name in result.added:
        assert (ds.files_dir / name).read_bytes() == (folder / name).read_bytes()
    [listed] = registry.all()
    meta = listed.meta
    assert (meta["name"], meta["source"], meta["count"]) == ("mine", "folder", 6) and meta["created"] > 0
    assert meta["imports"][0]["kind"] == "folder" and len(meta["imports"][0]["skipped"]) == 2
    assert result.version.number == 1 and len(result.version.files) == 6 and result.version.fit == "crop"

    again = importer.import_folder(ds, folder)  # the same import twice adds nothing
    assert again.added == [] and all(r in ("already imported", "not an image") or "decode" in r
                                     for _, r in again.skipped)
    assert len(ds.versions()) == 1


def test_zip_import_keeps_classes_and_a_zip_slip_is_refused_whole(registry, tmp_path):
    pixels = np.full((32, 32, 3), 200, np.uint8)
    good = io.BytesIO()
    with zipfile.ZipFile(good, "w") as z:
        z.writestr("faces/happy/1.png", png_bytes(pixels))
        z.writestr("faces/sad/2.png", png_bytes(255 - pixels))
    ds = registry.create("faces", "zip")
    result = importer.import_zip(ds, good.getvalue(), "faces.zip")
    assert sorted(result.added) == ["faces/happy/1.png", "faces/sad/2.png"]
    assert load_image_set(str(result.version.path), 32).class_names == ["happy", "sad"]

    for evil in ("../escape.png", "/etc/evil.png", "ok/../../up.png"):
        bad = io.BytesIO()
        with zipfile.ZipFile(bad, "w") as z:
            z.writestr("fine.png", png_bytes(pixels))
            z.writestr(evil, png_bytes(pixels))
        with pytest.raises(DataSetError, match="unsafe entry"):
            importer.import_zip(ds, bad.getvalue(), "evil.zip")
    assert sorted(ds.file_names()) == ["faces/happy/1.png", "faces/sad/2.png"]  # nothing written
    assert not (tmp_path / "escape.png").exists()


def test_uploaded_images_and_zips(registry):
    pixels = np.zeros((24, 24, 3), np.uint8)
    pixels[:, :12] = 255
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w") as z:
        z.writestr("z.webp", png_bytes(pixels, "WEBP"))
    ds = registry.create("up", "upload")
    result = importer.import_uploads(ds, [("C:\\photos\\x.jpg", png_bytes(pixels, "JPEG")),
                                            ("tiny.png", png_bytes(pixels[:8, :8])),
                                            ("more.zip", inner.getvalue())])
    assert sorted(result.added) == ["x.jpg", "z.webp"]
    assert dict(result.skipped)["tiny.png"].startswith("too small")
    assert len(ds.latest().files) == 2


def test_oversized_files_and_decompression_bombs_are_skipped_with_reasons(registry, tmp_path, monkeypatch):
    folder = tmp_path / "risky"
    folder.mkdir()
    Image.new("1", (12_000, 12_000)).save(folder / "bomb.png")  # 144 Mpx in a few kB: over Pillow's limit
    (folder / "big.png").write_bytes(png_bytes(np.zeros((40, 40, 3), np.uint8)) + b"\0" * 200_000)
    Image.new("RGB", (40, 40), "red").save(folder / "ok.png")
    monkeypatch.setattr("core.data.imageset.MAX_FILE_BYTES", 100_000)
    ds = registry.create("risky", "folder")
    result = importer.import_folder(ds, folder)
    reasons = dict(result.skipped)
    assert result.added == ["ok.png"]
    assert reasons["bomb.png"].startswith("decompression bomb (144000000 pixels)")
    assert reasons["big.png"].startswith("too large")


def test_url_list_import_is_resumable(registry, image_server):
    base, hits = image_server
    urls = [f"{base}/img/1.png", f"{base}/img/2.png", f"{base}/missing.png", f"{base}/page.html", "ftp://x/y.png"]
    ds = registry.create("web", "urls")
    calls = []
    result = importer.import_urls(ds, urls, progress=lambda d, t: calls.append((d, t)), timeout=(2, 2),
                                  allowed_networks=LOCAL)
    assert len(result.added) == 2 and calls[-1] == (5, 5)
    reasons = dict(result.skipped)
    assert reasons[f"{base}/missing.png"] == "HTTP 404"
    assert reasons[f"{base}/page.html"].startswith("not an image")
    assert "http(s)" in reasons["ftp://x/y.png"]
    assert curate.report(list(curate.scan(ds).values()))["usable"] == 2

    served = dict(hits)
    again = importer.import_urls(ds, urls, timeout=(2, 2), allowed_networks=LOCAL)
    assert again.added == [] and hits["/img/1.png"] == served["/img/1.png"]  # not fetched again
    assert len(ds.versions()) == 1


def test_report_counts_sizes_formats_and_broken_files(registry, tmp_path):
    folder = tmp_path / "mixed"
    folder.mkdir()
    Image.new("RGB", (80, 40), "blue").save(folder / "wide.jpg")
    Image.new("RGB", (50, 50), "green").save(folder / "square.png")
    ds = registry.create("mixed", "folder")
    importer.import_folder(ds, folder)
    (ds.files_dir / "added-later.png").write_bytes(b"garbage")  # not through the importer
    infos = curate.scan(ds)
    rep = curate.report(list(infos.values()))
    assert (rep["files"], rep["usable"], rep["square"], rep["smallest"]) == (3, 2, 1, 40)
    assert dict(rep["formats"]) == {"JPEG": 1, "PNG": 1}
    assert sorted(rep["aspects"]) == [1.0, 2.0]
    assert rep["broken"][0][0] == "added-later.png"


@pytest.fixture
def curated_set(registry, tmp_path, emoji):
    """40 emoji faces + an exact copy + a re-encoded, resized copy + a photo-noise image."""
    folder = tmp_path / "faces"
    folder.mkdir()
    faces = [i for i, c in enumerate(emoji.labels) if emoji.class_names[c] == "Smileys & Emotion"][:40]
    for i in faces:
        (folder / f"{emoji.names[i]}.png").write_bytes(png_bytes(emoji.images[i]))
    first = emoji.names[faces[0]]
    (folder / "copy.png").write_bytes((folder / f"{first}.png").read_bytes())
    near = Image.fromarray(emoji.images[faces[1]]).resize((56, 56), Image.Resampling.BICUBIC)
    near.save(folder / "near.jpg", quality=80)
    rng = np.random.default_rng(0)
    (folder / "noise.png").write_bytes(png_bytes(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)))
    ds = registry.create("faces", "folder")
    importer.import_folder(ds, folder)
    return ds, first, emoji.names[faces[1]]


def test_duplicates_are_grouped_and_one_of_each_is_kept(curated_set):
    ds, first, second = curated_set
    infos = curate.scan(ds)
    exact = curate.exact_duplicates(list(infos.values()))
    near = curate.near_duplicates(list(infos.values()), curate.file_opener(ds))
    assert exact == [sorted(["copy.png", f"{first}.png"])]
    assert near == [sorted(["near.jpg", f"{second}.png"])]
    drop = curate.keep_one(exact + near, infos)
    assert sorted(drop) == sorted(["copy.png", "near.jpg"]) or sorted(drop) == sorted([f"{first}.png", "near.jpg"])
    assert "near.jpg" in drop  # the smaller one goes


def test_outliers_rank_the_image_that_does_not_belong_first(curated_set):
    ds, _, _ = curated_set
    ranking = curate.outlier_ranking(ds.latest().path)
    assert ranking[0][0] == "noise.png"
    assert ranking[0][1] > 1.5 * np.median([score for _, score in ranking])


def test_a_curated_version_is_what_training_uses(curated_set, tmp_path):
    ds, first, _ = curated_set
    v1 = ds.latest()
    v2 = ds.save_version([f for f in v1.files if f not in ("copy.png", "noise.png")], "pad", note="cleaned")
    assert (v2.number, v2.fit, len(v2.files)) == (2, "pad", len(v1.files) - 2)
    assert [v.number for v in ds.versions()] == [1, 2] and set(ds.file_names()) >= set(v1.files)  # nothing deleted
    loaded = load_image_set(str(v2.path), 32)
    assert len(loaded.images) == len(v2.files) and "noise.png" not in loaded.names
    assert resolve({"data": str(v2.path)}).fit == "pad"
    assert resolve({"data": str(v2.path), "fit": "crop"}).fit == "crop"

    with pytest.raises(DataSetError, match="not in data set"):
        ds.save_version(["../../etc/passwd"], "crop")
    with pytest.raises(DataSetError, match="at least one"):
        ds.save_version([], "crop")

    out = tmp_path / "run"
    proc = subprocess.run([sys.executable, "-m", "core.train", "--data", str(v2.path), "--out", str(out),
                           "--recipe", "small-data", "--res", "32", "--channels", "8", "--batch", "8",
                           "--kimg", "0.02"],
                          cwd=REPO, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr
    config = json.loads((out / "config.json").read_text())
    assert config["fit"] == "pad" and config["runtime"]["n_images"] == len(v2.files)


def test_a_tampered_version_cannot_point_outside_its_data_set(curated_set):
    ds, _, _ = curated_set
    manifest = json.loads(ds.latest().path.read_text())
    manifest["files"].append("../../../secret.png")
    bad = ds.versions_dir / "v9.json"
    bad.write_text(json.dumps(manifest))
    with pytest.raises(Exception, match="unsafe"):
        load_image_set(str(bad), 32)


@pytest.mark.parametrize("name", ["", "../x", "a/b", ".hidden", "x" * 65])
def test_data_set_names_cannot_leave_the_folder(registry, name):
    with pytest.raises(DataSetError, match="invalid data set name"):
        registry.create(name, "folder")


def test_an_existing_name_is_refused_and_delete_removes_only_the_copy(registry, tmp_path):
    folder = make_images(tmp_path / "src", 3, classes=())
    ds = registry.create("one", "folder")
    importer.import_folder(ds, folder)
    with pytest.raises(DataSetError, match="already exists"):
        registry.create("one", "folder")
    registry.delete("one")
    assert registry.all() == [] and len(list(folder.iterdir())) == 3


def test_an_interrupted_url_import_is_completed_by_the_next_one(registry, image_server):
    base, _ = image_server
    urls = [f"{base}/img/{i}.png" for i in range(6)]
    ds = registry.create("web", "urls")

    def stop_after_two(done, total):
        if done == 2:
            raise KeyboardInterrupt  # what the app's stop button does to a running script

    with pytest.raises(KeyboardInterrupt):
        importer.import_urls(ds, urls, progress=stop_after_two, workers=1, allowed_networks=LOCAL)
    assert ds.latest() is None and 2 <= len(ds.file_names()) < 6
    result = importer.import_urls(ds, urls, allowed_networks=LOCAL)
    assert len(result.version.files) == 6 and sorted(result.added) == sorted(ds.file_names())
