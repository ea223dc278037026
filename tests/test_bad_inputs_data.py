"""Hostile inputs to the data import and the loader, each kept as a test (issue 16)."""
import io
import json
import ssl
import subprocess
import sys
import threading
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from http.server import ThreadingHTTPServer

import hostile_inputs
import pytest
from conftest import make_images
from hostile_inputs import EPS, blank_png, png, spy, zip_of
from PIL import EpsImagePlugin, Image, ImageFile

from core.data import download, images, importer, sources
from core.data.datasets import DataRegistry, DataSetError
from core.data.images import NOT_ALLOWED, UnusableImage, decode_image
from core.data.imageset import DataError, load_image_set
from core.data.sources import SourceFile, read_file, read_path
from core.data.urlimport import download_urls

LOCAL = ["127.0.0.1/32"]  # the test server; nothing else is ever contacted
RES = 16


@pytest.fixture
def registry(tmp_path):
    return DataRegistry(tmp_path / "sets")


@pytest.fixture(scope="module")
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), hostile_inputs.Handler)
    thread = hostile_inputs.serve(httpd)
    httpd.port = httpd.server_address[1]
    httpd.base = f"http://127.0.0.1:{httpd.port}"
    yield httpd
    hostile_inputs.stop(httpd, thread)


def hits(server, route):
    with server.lock:
        return server.hits.get(route, 0)


@pytest.fixture
def fake_dns(monkeypatch):
    return hostile_inputs.fake_dns(monkeypatch)


# --- 1. only the five formats' decoders ever see user data ----------------------------------


def test_postscript_named_png_never_reaches_the_eps_decoder(tmp_path, registry, server, monkeypatch):
    eps_decoder = spy(monkeypatch, EpsImagePlugin.EpsImageFile, "_open")  # its load() runs Ghostscript
    with Image.open(io.BytesIO(EPS)) as image:  # unasked, Pillow lets the content pick the decoder
        assert image.format == "EPS" and eps_decoder
    eps_decoder.clear()
    with pytest.raises(UnusableImage, match=NOT_ALLOWED):
        decode_image(EPS)
    folder = make_images(tmp_path / "folder", 3, classes=())
    (folder / "cover.png").write_bytes(EPS)
    assert {s.name: s.reason for s in load_image_set(str(folder), RES).skipped} == {"cover.png": NOT_ALLOWED}

    ds = registry.create("covers", "folder")
    assert dict(importer.import_folder(ds, folder).skipped) == {"cover.png": NOT_ALLOWED}
    assert dict(importer.import_uploads(ds, [("cover.png", EPS)]).skipped) == {"cover.png": NOT_ALLOWED}
    zipped = importer.import_zip(ds, zip_of({"in/cover.png": EPS, "in/ok.png": png()}), "covers.zip")
    assert dict(zipped.skipped) == {"in/cover.png": NOT_ALLOWED}
    [result] = download_urls([f"{server.base}/cover.png"], tmp_path / "dl", allowed_networks=LOCAL)
    assert (result.status, result.reason) == ("failed", NOT_ALLOWED)
    assert eps_decoder == []


def test_other_formats_are_refused_whatever_their_name():
    for other_format in ("TIFF", "PPM", "ICO"):
        with pytest.raises(UnusableImage, match=NOT_ALLOWED):
            decode_image(png(save_as=other_format))


# --- 2. the URL import reaches public addresses only ------------------------------------------


def test_loopback_is_refused_without_a_request(server, tmp_path):
    before = hits(server, "/red.png")
    urls = [f"{server.base}/red.png", f"http://2130706433:{server.port}/red.png",  # 127.0.0.1 as one number
            f"http://localhost:{server.port}/red.png", f"http://[::1]:{server.port}/red.png"]
    results = download_urls(urls, tmp_path)
    assert [(r.status, r.reason) for r in results] == [("failed", download.REFUSED)] * len(urls)
    assert hits(server, "/red.png") == before and list(tmp_path.iterdir()) == []
    # The decimal form is that same address: allowed, it downloads.
    [allowed] = download_urls(urls[1:2], tmp_path, allowed_networks=LOCAL)
    assert allowed.status == "ok"


def test_redirects_are_checked_hop_by_hop_and_refusals_all_read_alike(server, tmp_path):
    refused_targets = [f"http://127.0.0.2:{server.port}/red.png",  # loopback, nothing listening
                       f"http://2130706434:{server.port}/red.png",  # the same, as one number
                       "http://169.254.169.254/latest/meta-data/", "http://10.0.0.1/x.png",
                       f"http://[::ffff:127.0.0.1]:{server.port}/red.png", "http://0.0.0.0/x.png"]
    urls = [f"{server.base}/to?url={target}" for target in refused_targets]
    direct = [f"http://127.0.0.1:{server.port}/red.png", "http://127.0.0.1:1/x.png"]  # an open port, a closed one
    results = (download_urls(urls, tmp_path, allowed_networks=LOCAL, timeout=(1, 1))
               + download_urls(direct, tmp_path, timeout=(1, 1)))
    # One reason whatever the target and whether its port is open: no port scanner.
    assert {(r.status, r.reason) for r in results} == {("failed", download.REFUSED)}


def test_at_most_five_redirects(server, tmp_path):
    five, six = download_urls([f"{server.base}/hop/5", f"{server.base}/hop/6"], tmp_path,
                              allowed_networks=LOCAL, workers=1)
    assert five.status == "ok"
    assert (six.status, six.reason) == ("failed", "too many redirects (over 5)")
    assert hits(server, "/hop/0") == 1  # only five's chain got there


def test_connects_to_the_checked_address_and_keeps_the_name(server, tmp_path, fake_dns):
    names, calls = fake_dns
    # Rebinding: the first answer passes the check; any later one would point elsewhere.
    names["images.test"] = lambda call: ["127.0.0.1"] if call == 1 else ["10.255.255.1"]
    [result] = download_urls([f"http://images.test:{server.port}/red.png"], tmp_path, allowed_networks=LOCAL)
    assert result.status == "ok" and calls["images.test"] == 1
    assert server.hosts[-1] == f"images.test:{server.port}"  # the Host header keeps the name


def test_a_name_with_one_private_address_among_public_ones_is_refused(server, tmp_path, fake_dns):
    names, _ = fake_dns
    names["mixed.test"] = ["8.8.8.8", "127.0.0.1"]
    before = hits(server, "/red.png")
    [result] = download_urls([f"http://mixed.test:{server.port}/red.png"], tmp_path, allowed_networks=["8.8.8.8/32"])
    assert result.reason == download.REFUSED and hits(server, "/red.png") == before


def test_public_addresses():
    from ipaddress import ip_address
    public = ["8.8.8.8", "1.1.1.1", "2606:4700::1111"]
    private = ["127.0.0.1", "127.1.2.3", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254",
               "100.64.0.1", "0.0.0.0", "224.0.0.1", "239.255.255.250", "255.255.255.255", "240.0.0.1",
               "::1", "::", "fe80::1", "fc00::1", "ff02::1", "::ffff:127.0.0.1", "::ffff:10.0.0.1",
               "2002:7f00:1::", "64:ff9b::a00:1"]
    assert [download.is_public(ip_address(a)) for a in public] == [True] * len(public)
    assert [a for a in private if download.is_public(ip_address(a))] == []


def test_tls_checks_the_name_while_connecting_to_the_checked_address(tmp_path, fake_dns, monkeypatch):
    if not (pair := hostile_inputs.self_signed(tmp_path, "images.test")):
        pytest.skip("needs the openssl command")
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), hostile_inputs.Handler)
    server_side = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_side.load_cert_chain(*pair)
    httpd.socket = server_side.wrap_socket(httpd.socket, server_side=True)
    thread = hostile_inputs.serve(httpd)
    client_side = ssl.create_default_context(cafile=str(pair[0]))
    monkeypatch.setattr(download, "_tls", lambda: client_side)
    fake_dns[0]["images.test"] = ["127.0.0.1"]
    port = httpd.server_address[1]
    try:
        urls = [f"https://images.test:{port}/red.png", f"https://127.0.0.1:{port}/red.png"]
        by_name, by_address = download_urls(urls, tmp_path / "dl", allowed_networks=LOCAL, retries=0, timeout=(2, 2))
    finally:
        hostile_inputs.stop(httpd, thread)
    assert by_name.status == "ok"
    assert (by_address.status, by_address.reason) == ("failed", "TLS certificate not valid for this host")


# --- 3. zips that would cost far more than their size ---------------------------------------


def test_members_that_would_expand_like_bombs_are_refused_unread(registry, tmp_path, monkeypatch):
    zeros = bytes(8 * 2**20)
    data = zip_of({"i.png": zeros, "deflated.png": zeros, "ok.png": png()},
                  {"i.png": zipfile.ZIP_BZIP2, "deflated.png": zipfile.ZIP_DEFLATED})
    (tmp_path / "bombs.zip").write_bytes(data)
    opened_members = spy(monkeypatch, zipfile.ZipFile, "open",
                         lambda _, member, *rest: getattr(member, "filename", member))

    started = time.perf_counter()
    result = importer.import_zip(registry.create("z", "upload"), data, "bombs.zip")
    assert time.perf_counter() - started < 1
    reasons = dict(result.skipped)
    assert reasons["i.png"] == "compressed with bzip2 (only stored or deflated zip members are read)"
    assert reasons["deflated.png"].startswith("compressed ") and "over 100x: a zip bomb?" in reasons["deflated.png"]
    assert result.added == ["ok.png"] and set(opened_members) == {"ok.png"}

    opened_members.clear()
    loaded = load_image_set(str(tmp_path / "bombs.zip"), RES)
    assert {s.name for s in loaded.skipped} == {"i.png", "deflated.png"} and "i.png" not in opened_members


def test_a_zip_with_too_many_entries_is_refused_whole(registry, tmp_path, monkeypatch):
    monkeypatch.setattr(sources, "MAX_ZIP_ENTRIES", 10)
    data = zip_of({f"e{i}.png": png() for i in range(11)})
    (tmp_path / "many.zip").write_bytes(data)
    ds = registry.create("many", "upload")
    with pytest.raises(DataSetError, match="has 11 entries, over the 10 a zip may hold"):
        importer.import_zip(ds, data, "many.zip")
    with pytest.raises(DataError, match="has 11 entries"):
        load_image_set(str(tmp_path / "many.zip"), RES)
    assert ds.file_names() == []


def test_bytes_read_count_not_the_size_listed(tmp_path):
    path = tmp_path / "grew.png"
    path.write_bytes(png() + bytes(3 * 2**20))  # listed at 10 bytes: grown since, or a lying zip header
    liar = SourceFile("grew.png", 10, partial(read_path, path))
    pytest.raises(UnusableImage, read_file, liar, 2 * 2**20).match(r"too large \(over 2 MB\)")
    assert read_file(liar, 4 * 2**20) == path.read_bytes()


def test_only_the_first_skip_reasons_are_stored_with_their_count(registry):
    members = {f"empty{i:03d}.png": b"" for i in range(150)}
    ds = registry.create("empties", "upload")
    result = importer.import_zip(ds, zip_of({**members, "ok.png": png()}), "empties.zip")
    assert len(result.skipped) == 150  # the page shows this import's own list whole
    record = ds.meta["imports"][-1]
    assert len(record["skipped"]) == 100 and record["skipped_count"] == 150
    assert len(ds.skipped_on_import()) == 100 and ds.skipped_on_import_count() == 150


# --- 4. pixel bombs ---------------------------------------------------------------------------------


def test_images_over_the_pixel_limit_are_refused_before_decoding(tmp_path, server, monkeypatch):
    loaded = spy(monkeypatch, ImageFile.ImageFile, "load", lambda image: image.size)
    bomb = blank_png(9_400, 9_400)  # 88 Mpx: just under Pillow's own limit, 340 MB decoded
    with pytest.raises(UnusableImage, match=r"^decompression bomb \(88360000 pixels\)$"):
        decode_image(bomb)
    folder = make_images(tmp_path / "folder", 2, classes=())
    (folder / "bomb.png").write_bytes(bomb)
    assert [s.reason for s in load_image_set(str(folder), RES).skipped] == ["decompression bomb (88360000 pixels)"]
    [result] = download_urls([f"{server.base}/bomb.png"], tmp_path / "dl", allowed_networks=LOCAL)
    assert result.reason == "decompression bomb (88360000 pixels)"
    assert all(w * h <= images.MAX_PIXELS for w, h in loaded)


def test_the_pixel_limit_is_exact(monkeypatch):
    monkeypatch.setattr(images, "MAX_PIXELS", 100 * 100)
    assert decode_image(png((100, 100))).size == (100, 100)
    with pytest.raises(UnusableImage, match=r"decompression bomb \(10100 pixels\)"):
        decode_image(png((101, 100)))


def test_the_bomb_check_holds_in_parallel_threads(monkeypatch):
    # Between 1x and 2x Pillow's limit Pillow only warns; a warnings filter set in one thread
    # is not seen reliably by others, so the check must not depend on one.
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    good, bomb = png((30, 30)), png((40, 30))  # 900 and 1,200 pixels

    def verdict(data):
        try:
            decode_image(data)
            return "ok"
        except UnusableImage as exc:
            return str(exc)

    with ThreadPoolExecutor(8) as pool:
        verdicts = list(pool.map(verdict, [good, bomb] * 100))
    assert verdicts == ["ok", "decompression bomb (1200 pixels)"] * 100


# --- 5. a deadline per URL -------------------------------------------------------------------------


@pytest.mark.parametrize("route", ["/drip-body", "/drip-headers"])
def test_a_server_that_drips_bytes_is_cut_off_at_the_deadline(server, tmp_path, route):
    started = time.monotonic()
    [result] = download_urls([server.base + route], tmp_path, allowed_networks=LOCAL, timeout=(2, 2),
                             deadline_s=1.0, retries=2)
    assert (result.status, result.reason) == ("failed", "timed out")
    assert time.monotonic() - started < 2.5  # each byte came within the 2 s read timeout
    assert hits(server, route) == 1  # out of time: no retry


# --- 8. links out of the folder -------------------------------------------------------------------


def test_links_to_files_outside_the_folder_are_skipped(registry, tmp_path):
    folder = make_images(tmp_path / "folder", 3, classes=())
    outside = tmp_path / "private"
    outside.mkdir()
    (outside / "secret.png").write_bytes(png())
    (folder / "evil.png").symlink_to(outside / "secret.png")
    (folder / "inside.png").symlink_to("img000.png")
    (folder / "elsewhere").symlink_to(outside, target_is_directory=True)
    reason = "link to a file outside the folder"

    loaded = load_image_set(str(folder), RES)
    assert {s.name: s.reason for s in loaded.skipped} == {"evil.png": reason}
    assert "inside.png" in loaded.names and not any("secret" in name for name in loaded.names)
    result = importer.import_folder(registry.create("linked", "folder"), folder)
    assert dict(result.skipped) == {"evil.png": reason}
    assert sorted(result.added) == ["img000.png", "img001.png", "img002.png", "inside.png"]


# --- 9. names the disk refuses ---------------------------------------------------------------------


def test_names_the_disk_refuses_are_skipped_and_the_import_goes_on(registry):
    too_long = "a" * 300 + ".png"
    members = {"cat.png": png(), "cat.png/x.png": png(colour=(1, 2, 3)), too_long: png(), "b" * 250 + ".png": png(),
               "deep/" + "d" * 300 + "/x.png": png(), "zz.png": png()}
    ds = registry.create("odd", "upload")
    result = importer.import_zip(ds, zip_of(members), "odd.zip")
    assert sorted(result.added) == sorted(["cat.png", "b" * 250 + ".png", "zz.png"])
    reasons = dict(result.skipped)
    assert reasons["cat.png/x.png"].startswith("cannot save: ")
    assert reasons[too_long] == reasons["deep/" + "d" * 300 + "/x.png"] == "cannot save: File name too long"
    # Nothing half-copied: no temp file, no empty folder, and every file has its scan entry.
    assert sorted(p.name for p in ds.files_dir.iterdir()) == sorted(result.added)
    assert {entry["name"] for entry in json.loads((ds.path / "scan.json").read_text())} == set(result.added)
    assert sorted(ds.latest().files) == sorted(result.added)


def test_an_import_stopped_half_way_is_completed_by_the_next_one(registry, tmp_path):
    folder = make_images(tmp_path / "folder", 6, classes=())
    ds = registry.create("stopped", "folder")
    importer.import_folder(ds, make_images(tmp_path / "first", 1, classes=(), seed=5))

    def stop_after_two(done, total):
        if done == 2:
            raise KeyboardInterrupt  # the app's stop button

    with pytest.raises(KeyboardInterrupt):
        importer.import_folder(ds, folder, stop_after_two)
    scanned = {entry["name"] for entry in json.loads((ds.path / "scan.json").read_text())}
    assert scanned == set(ds.file_names())  # the copied files have their scan entries
    result = importer.import_folder(ds, folder)
    # The first import's img000.png was there: this one's went in as img000-2.png, once.
    assert sorted(result.added) == ["img000-2.png"] + [f"img{i:03d}.png" for i in range(1, 6)]
    assert sorted(ds.file_names()) == sorted(ds.latest().files) == sorted(result.added + ["img000.png"])


# --- 13. two imports into one data set at once --------------------------------------------------------


def test_two_imports_at_once_keep_every_file_and_both_versions(registry, tmp_path):
    folders = [make_images(tmp_path / f"tab{t}", 15, seed=t) for t in (1, 2)]  # the same 15 names each
    ds = registry.create("shared", "folder")
    start = threading.Barrier(2)

    def run(folder):
        start.wait()
        return importer.import_folder(registry.get("shared"), folder)

    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(run, folders))
    names = ds.file_names()
    assert len(names) == 30 == len(set(names))
    assert sorted(r.version.number for r in results) == [1, 2] == [v.number for v in ds.versions()]
    assert sorted(ds.latest().files) == names
    assert len(json.loads((ds.path / "scan.json").read_text())) == 30


def test_files_and_versions_are_created_never_replaced(registry, monkeypatch):
    ds = registry.create("exclusive", "upload")
    first, second = png(), png(colour=(9, 9, 9))
    assert ds.add_file("x.png", first) == "x.png"
    assert ds.add_file("x.png", second) == "x-2.png"
    assert (ds.files_dir / "x.png").read_bytes() == first
    # A writer that missed the lock and still believes there is no version yet gets v2, not v1.
    monkeypatch.setattr(type(ds), "latest", lambda self: None)
    v1, v2 = ds.save_version(["x.png"], "crop"), ds.save_version(["x-2.png"], "crop")
    assert (v1.number, v2.number) == (1, 2) and json.loads(v1.path.read_text())["files"] == ["x.png"]
    assert sorted(p.name for p in ds.versions_dir.iterdir()) == ["v1.json", "v2.json"]  # no temp file left


def test_two_tabs_creating_one_name_get_one_data_set(registry):
    start = threading.Barrier(2)

    def create(_):
        start.wait()
        try:
            return registry.create("same", "folder").name
        except DataSetError as exc:
            return str(exc)

    with ThreadPoolExecutor(2) as pool:
        outcomes = sorted(pool.map(create, range(2)))
    assert outcomes[0].startswith("a data set named 'same' already exists") and outcomes[1] == "same"


def test_the_lock_is_held_across_processes(registry, tmp_path):
    ds = registry.create("locked", "folder")
    code = ("import fcntl, sys, time; f = open(sys.argv[1], 'a'); fcntl.flock(f, fcntl.LOCK_EX); "
            "print('held', flush=True); time.sleep(1)")
    holder = subprocess.Popen([sys.executable, "-c", code, ds.path / ".dataset.json.lock"], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        started = time.monotonic()
        importer.import_folder(ds, make_images(tmp_path / "imgs", 2, classes=()))
        assert time.monotonic() - started > 0.5  # waited for the other process
    finally:
        holder.wait(timeout=10)
    assert len(ds.file_names()) == 2
