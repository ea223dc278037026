"""URL import against a real local HTTP server that serves good, bad and hostile images."""
import io
import re
import threading
import time
from collections import Counter
from functools import partial
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import numpy as np
import pytest
from PIL import Image

from core.data import urlimport
from core.data.urlimport import UrlResult, parse_url_list, url_file_stem

# The test server is on 127.0.0.1, which the import refuses unless told otherwise.
download_urls = partial(urlimport.download_urls, allowed_networks=["127.0.0.1/32"])

SIZE = (64, 48)  # width, height of the good images
GOOD = ("red.png", "green.jpg", "blue.png", "anim.gif", "grey.webp")
SLOW_S = 2.0
FAST_TIMEOUT = (2.0, 0.5)  # read timeout well under SLOW_S
IMAGE_CAP = 50_000
HUGE_BYTES = 200_000
KEPT_NAME = re.compile(r"^url-[0-9a-f]{16}\.(jpg|png|gif|webp|bmp)$")


def _gradient(colour, image_format: str) -> bytes:
    width, height = SIZE
    ramp = np.linspace(0.2, 1.0, width)[None, :, None] * np.linspace(0.5, 1.0, height)[:, None, None]
    pixels = (ramp * np.array(colour)).astype(np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, image_format)
    return out.getvalue()


def _blank_png(width: int, height: int) -> bytes:
    """A PNG that declares width*height pixels but is tiny on disk (1-bit, all black)."""
    out = io.BytesIO()
    Image.new("1", (width, height)).save(out, "PNG")
    return out.getvalue()


def _make_files() -> dict[str, tuple[str, bytes]]:
    """path -> (content type, body) for everything served with status 200."""
    files = {
        "/red.png": ("image/png", _gradient((255, 40, 40), "PNG")),
        "/green.jpg": ("image/jpeg", _gradient((40, 255, 40), "JPEG")),
        "/blue.png": ("image/png", _gradient((40, 40, 255), "PNG")),
        "/anim.gif": ("image/gif", _gradient((200, 200, 40), "GIF")),
        "/grey.webp": ("image/webp; charset=binary", _gradient((128, 128, 128), "WEBP")),
        "/page.html": ("text/html; charset=utf-8", b"<html><body>not a photo</body></html>"),
        "/fake.png": ("image/png", b"\x89PNG\r\n\x1a\n" + b"garbage" * 100),
        "/photo.tiff": ("image/tiff", _gradient((10, 20, 30), "TIFF")),
        # Over Pillow's warning limit (89M pixels) and over its error limit (2x that).
        "/bomb.png": ("image/png", _blank_png(10_000, 9_000)),
        "/bigbomb.png": ("image/png", _blank_png(13_400, 13_400)),
        "/huge.png": ("image/png", b"\0" * HUGE_BYTES),
    }
    files["/noctype.png"] = (None, files["/red.png"][1])
    files["/flaky.png"] = files["/blue.png"]
    files["/huge-nolength.png"] = files["/huge.png"]
    files["/liar.png"] = files["/red.png"]  # small body, huge Content-Length: rejected unread
    return files


class _Handler(BaseHTTPRequestHandler):
    """Routes on the path; counts hits on the full path (tests add ?t=name to stay apart)."""

    def do_GET(self):
        server = self.server
        with server.lock:
            server.hits[self.path] += 1
            server.agents[self.path] = self.headers.get("User-Agent")
            hits = server.hits[self.path]
        route = urlsplit(self.path).path
        if route == "/slow.png":
            time.sleep(SLOW_S)
        if route == "/flaky.png" and hits == 1:
            return self._send(503, "text/plain", b"busy", 4)
        if route not in server.files:
            return self._send(404, "text/plain", b"not found", 9)
        content_type, body = server.files[route]
        length = {"/huge-nolength.png": None, "/liar.png": 10**9}.get(route, len(body))
        self._send(200, content_type, body, length)

    def _send(self, status, content_type, body, length=None):
        try:
            self.send_response(status)
            if content_type:
                self.send_header("Content-Type", content_type)
            if length is not None:
                self.send_header("Content-Length", str(length))
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up on purpose (timeouts, size caps)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.daemon_threads = True  # a handler still asleep in /slow.png must not block shutdown
    httpd.files = _make_files()
    httpd.files["/slow.png"] = httpd.files["/red.png"]
    httpd.hits = Counter()
    httpd.agents = {}
    httpd.lock = threading.Lock()
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    httpd.base = f"http://127.0.0.1:{httpd.server_address[1]}"
    yield httpd
    httpd.shutdown()
    httpd.server_close()
    thread.join(timeout=5)
    assert not thread.is_alive()


def _url(server, path, test):
    return f"{server.base}{path}?t={test}"


def _hits(server, urls):
    base = len(server.base)
    with server.lock:
        return {url: server.hits[url[base:]] for url in urls}


def _total_hits(server):
    with server.lock:
        return sum(server.hits.values())


def test_mixed_list_keeps_good_images_and_explains_each_failure(server, tmp_path):
    bad = {
        "/missing.png": "HTTP 404",
        "/slow.png": "timed out",
        "/page.html": "not an image (content-type text/html)",
        "/huge.png": "over the 48.8 KB size cap",
        "/huge-nolength.png": "over the 48.8 KB size cap",
        "/liar.png": "over the 48.8 KB size cap",
        "/fake.png": "truncated file",  # the loader's reasons: one decoding rule for every way in
        "/photo.tiff": "cannot decode: not a JPEG, PNG, WEBP, GIF or BMP image",
        "/bomb.png": "decompression bomb (90000000 pixels)",
        "/bigbomb.png": "decompression bomb (179560000 pixels)",
    }
    good = [f"/{name}" for name in GOOD] + ["/noctype.png", "/flaky.png"]
    paths = [p for pair in zip(good, list(bad)) for p in pair] + list(bad)[len(good):]
    urls = [_url(server, p, "mixed") for p in paths]
    calls = []

    def progress(done, total):
        calls.append((done, total, threading.current_thread() is threading.main_thread()))

    results = download_urls(urls, tmp_path / "dl", max_image_bytes=IMAGE_CAP, timeout=FAST_TIMEOUT,
                            retries=1, progress=progress)

    assert [r.url for r in results] == urls
    by_path = dict(zip(paths, results))
    for path in good:
        result = by_path[path]
        assert result.status == "ok", (path, result.reason)
        assert result.file == url_file_stem(_url(server, path, "mixed")) + "." + path.rsplit(".", 1)[1]
        saved = tmp_path / "dl" / result.file
        assert saved.read_bytes() == server.files[path][1]
        with Image.open(saved) as image:
            assert image.size == SIZE
    for path, reason in bad.items():
        result = by_path[path]
        assert result.status == "failed" and result.file is None
        assert result.reason.startswith(reason), (path, result.reason)
    assert sorted(p.name for p in (tmp_path / "dl").iterdir()) == sorted(by_path[p].file for p in good)

    assert [(d, t) for d, t, _ in calls] == [(i, len(urls)) for i in range(1, len(urls) + 1)]
    assert all(on_main for _, _, on_main in calls)

    hits = _hits(server, urls)
    assert hits[_url(server, "/flaky.png", "mixed")] == 2  # 503, then retried
    assert hits[_url(server, "/slow.png", "mixed")] == 2  # timeouts are retried
    assert hits[_url(server, "/missing.png", "mixed")] == 1  # 4xx never is
    assert server.agents["/red.png?t=mixed"] == "GANscope-importer"



def test_second_run_skips_what_it_has_and_refetches_a_deleted_file(server, tmp_path):
    urls = [_url(server, f"/{name}", "resume") for name in GOOD] + [_url(server, "/missing.png", "resume")]
    first = download_urls(urls, tmp_path)
    assert [r.status for r in first] == ["ok"] * len(GOOD) + ["failed"]
    before = _hits(server, urls)

    second = download_urls(urls, tmp_path)
    assert [r.status for r in second] == ["skipped"] * len(GOOD) + ["failed"]
    assert [r.file for r in second] == [r.file for r in first]
    after = _hits(server, urls)
    assert {u: after[u] - before[u] for u in urls[:-1]} == {u: 0 for u in urls[:-1]}
    assert after[urls[-1]] == before[urls[-1]] + 1  # failures are tried again

    (tmp_path / first[1].file).unlink()
    third = download_urls(urls, tmp_path)
    assert [r.status for r in third] == ["skipped", "ok"] + ["skipped"] * (len(GOOD) - 2) + ["failed"]
    assert _hits(server, urls)[urls[1]] == after[urls[1]] + 1
    assert (tmp_path / first[1].file).read_bytes() == server.files[f"/{GOOD[1]}"][1]


def test_non_http_urls_fail_without_any_request_or_file(server, tmp_path):
    urls = ["file:///etc/passwd", "ftp://127.0.0.1/photo.png", "javascript:alert(1)",
            "data:image/png;base64,iVBORw0KGgo="]
    before = _total_hits(server)
    results = download_urls(urls, tmp_path / "dl")
    assert [(r.status, r.reason, r.file) for r in results] == \
        [("failed", "only http(s) URLs are allowed", None)] * len(urls)
    assert list((tmp_path / "dl").iterdir()) == []
    assert _total_hits(server) == before


def test_total_cap_holds_on_disk_and_fails_the_rest(server, tmp_path):
    paths = [f"/{name}" for name in GOOD]
    sizes = [len(server.files[p][1]) for p in paths]
    cap = sizes[0] + sizes[1] + 1  # one worker: the first two fit, the third does not
    results = download_urls([_url(server, p, "cap") for p in paths], tmp_path, max_total_bytes=cap, workers=1)

    assert [r.status for r in results] == ["ok", "ok"] + ["failed"] * (len(paths) - 2)
    assert {r.reason for r in results[2:]} == {"total size cap reached"}
    on_disk = sum(f.stat().st_size for f in tmp_path.iterdir())
    assert on_disk == sizes[0] + sizes[1] <= cap
    assert _hits(server, [results[-1].url])[results[-1].url] == 0  # not fetched once the cap is hit

    # Files kept by an earlier run of the list count too: resuming cannot grow past the cap.
    resumed = download_urls([r.url for r in results], tmp_path, max_total_bytes=on_disk, workers=1)
    assert [r.status for r in resumed] == ["skipped", "skipped"] + ["failed"] * (len(paths) - 2)
    assert {r.reason for r in resumed[2:]} == {"total size cap reached"}
    assert sum(f.stat().st_size for f in tmp_path.iterdir()) == on_disk


def test_total_cap_holds_with_parallel_downloads(server, tmp_path):
    paths = [f"/{name}" for name in GOOD]
    cap = sum(len(server.files[p][1]) for p in paths) // 2
    results = download_urls([_url(server, p, "cap4") for p in paths], tmp_path, max_total_bytes=cap, workers=4)
    assert sum(f.stat().st_size for f in tmp_path.iterdir()) <= cap
    assert {r.reason for r in results if r.status == "failed"} == {"total size cap reached"}
    assert any(r.status == "failed" for r in results)


def test_parse_plain_list_with_comments_blanks_and_duplicates():
    text = """
    # scraped 2024-05-01
    https://example.com/a.jpg

      "https://example.com/b.png"   
    https://example.com/a.jpg
    not a url at all
    file:///etc/passwd
    javascript:alert(1)
    ftp://example.com/c.gif
    //cdn.example.com/d.webp
    http://example.com/e.jpg, cat, 3
    """
    assert parse_url_list(text) == [
        "https://example.com/a.jpg",
        "https://example.com/b.png",
        "file:///etc/passwd",
        "javascript:alert(1)",
        "ftp://example.com/c.gif",
        "https://cdn.example.com/d.webp",
        "http://example.com/e.jpg",
    ]
    assert parse_url_list("") == []
    assert parse_url_list("# only a comment\n\n") == []


def test_parse_csv_takes_the_url_column():
    text = (
        'id,caption,image_url,profile\n'
        '1,"sunset, beach",https://img.example.com/1.jpg,https://social.example.com/u/1\n'
        '2,"a ""quoted"" caption","https://img.example.com/w_100,h_100/2.jpg",https://social.example.com/u/2\n'
        '3,no image,,https://social.example.com/u/3\n'
        '4,dup,https://img.example.com/1.jpg,x\n'
    )
    assert parse_url_list(text) == ["https://img.example.com/1.jpg", "https://img.example.com/w_100,h_100/2.jpg"]
    # Without a known header, each row gives its first http(s) field.
    headerless = "1,javascript:x,https://a.example/1.png,https://b.example/\n2,https://a.example/2.png\n"
    assert parse_url_list(headerless) == ["https://a.example/1.png", "https://a.example/2.png"]
    # Spreadsheet paste: tab-separated, header "URL".
    assert parse_url_list("name\tURL\nx\thttps://a.example/3.png\n") == ["https://a.example/3.png"]


def test_no_temp_files_left_after_failures(server, tmp_path):
    paths = ["/red.png", "/huge-nolength.png", "/fake.png", "/bomb.png", "/green.jpg", "/missing.png"]
    results = download_urls([_url(server, p, "tmp") for p in paths], tmp_path, max_image_bytes=IMAGE_CAP)
    assert [r.status for r in results] == ["ok", "failed", "failed", "failed", "ok", "failed"]
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == sorted(r.file for r in results if r.status == "ok")
    assert all(KEPT_NAME.match(name) for name in names)


def test_duplicate_urls_get_one_download_and_a_result_each(server, tmp_path):
    url = _url(server, "/red.png", "dup")
    calls = []
    results = download_urls([url, url], tmp_path, progress=lambda done, total: calls.append((done, total)))
    assert results == [UrlResult(url, "ok", url_file_stem(url) + ".png", None)] * 2
    assert calls == [(1, 2), (2, 2)]
    assert _hits(server, [url])[url] == 1


def test_programmer_errors_raise(tmp_path):
    with pytest.raises(ValueError):
        download_urls("https://example.com/a.jpg", tmp_path)
    with pytest.raises(ValueError):
        download_urls([], tmp_path, workers=0)
    with pytest.raises(ValueError):
        download_urls([], tmp_path, max_total_bytes=0)


def test_file_stem_is_deterministic_and_distinct():
    assert url_file_stem("https://a.example/1.jpg") == url_file_stem("https://a.example/1.jpg")
    assert url_file_stem("https://a.example/1.jpg") != url_file_stem("https://a.example/2.jpg")
    assert re.fullmatch(r"url-[0-9a-f]{16}", url_file_stem("https://a.example/1.jpg"))
