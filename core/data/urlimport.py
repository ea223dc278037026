"""Import images from a list of URLs (e.g. scraped social-media photos) into a folder.

Downloads run a few at a time, each to a public address only, bounded by
timeouts, a deadline and a size cap (core.data.download), and every file is
decoded with Pillow before it is kept. A bad URL only ever yields a failed
result with a short reason; it never stops the import. Files are named after a
hash of their URL, so a second run over the same list skips what it already
has without asking the server again.
"""
import csv
import hashlib
import re
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

from core.atomic import write_bytes
from core.data.download import ALLOWED_SCHEMES, MAX_URL_SECONDS, Downloader, Failed
from core.data.images import UnusableImage, decode_image, image_format

# One download: no more than the loader takes (core.data.imageset.MAX_FILE_BYTES), and less, as
# `workers` downloads from servers we know nothing about are held in memory at once.
MAX_DOWNLOAD_BYTES = 20 * 2**20
MAX_TOTAL_BYTES = 2 * 2**30  # per import
URL_COLUMNS = ("url", "image_url", "link")  # CSV header names, compared case-insensitively
# Pillow format -> file extension. MPO is what Pillow calls the JPEGs some phones write.
EXTENSIONS = {"JPEG": ".jpg", "MPO": ".jpg", "PNG": ".png", "WEBP": ".webp", "GIF": ".gif", "BMP": ".bmp"}

# scheme ":" then no whitespace: "https://x/a.jpg", "ftp://x", "javascript:alert(1)"
_URL_LIKE = re.compile(r"^[a-z][a-z0-9+.-]*:\S+$", re.IGNORECASE)

Progress = Callable[[int, int], None]


@dataclass
class UrlResult:
    url: str
    status: str  # "ok" (downloaded now), "skipped" (already there from an earlier run), "failed"
    file: str | None = None  # file name inside dest, for ok and skipped
    reason: str | None = None  # short human reason, for failed


# ---------------------------------------------------------------- URL lists

def parse_url_list(text: str) -> list[str]:
    """URLs from pasted text or an uploaded .txt/.csv, in order, without duplicates.

    CSV with a url/image_url/link header: that column. Otherwise each line's
    first http(s) field, else its first URL-like field: other schemes are kept
    so the import reports them instead of silently dropping them.
    """
    lines = [line for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]
    column = _url_column(lines[0]) if lines else None
    if column is not None:
        delimiter = _delimiter(lines[0])
        rows = [_fields(line, delimiter) for line in lines[1:]]
        candidates = [_with_scheme(_clean(row[column])) if column < len(row) else "" for row in rows]
        urls = [field for field in candidates if _URL_LIKE.match(field)]
    else:
        urls = [url for url in map(_url_in_line, lines) if url]
    return list(dict.fromkeys(urls))


def _url_column(line: str) -> int | None:
    header = [_clean(field).lower() for field in _fields(line, _delimiter(line))]
    return next((i for i, name in enumerate(header) if name in URL_COLUMNS), None)


def _fields(line: str, delimiter: str = ",") -> list[str]:
    try:
        return next(csv.reader([line], delimiter=delimiter))
    except csv.Error:  # NUL bytes, or a field over csv's size limit (a pasted data: URI)
        return line.split(delimiter)


def _delimiter(line: str) -> str:
    # Cells pasted from a spreadsheet are tab-separated; files are comma-separated.
    return "\t" if "\t" in line else ","


def _url_in_line(line: str) -> str | None:
    # Fields may be separated by commas or whitespace; a URL never holds raw whitespace.
    tokens = [_with_scheme(_clean(token)) for field in _fields(line) for token in field.split()]
    web = [t for t in tokens if _URL_LIKE.match(t) and _scheme(t) in ALLOWED_SCHEMES]
    other = [t for t in tokens if _URL_LIKE.match(t)]
    return (web or other or [None])[0]


def _clean(field: str) -> str:
    return field.strip().strip("\"'").strip()


def _with_scheme(field: str) -> str:
    # Scraped HTML often has protocol-relative links ("//cdn.example.com/a.jpg").
    return "https:" + field if field.startswith("//") else field


def _scheme(url: str) -> str:
    # Not urlsplit: it raises on some malformed URLs, and those must become failed results.
    return url.split(":", 1)[0].strip().lower() if ":" in url else ""


def url_file_stem(url: str) -> str:
    """File name (without extension) for a URL: the same on every run, so imports can resume."""
    return "url-" + hashlib.sha1(url.encode("utf-8")).hexdigest()[:16]


# ---------------------------------------------------------------- downloading

def download_urls(
    urls: Iterable[str],
    dest: Path,
    *,
    max_image_bytes: int = MAX_DOWNLOAD_BYTES,
    max_total_bytes: int = MAX_TOTAL_BYTES,
    timeout: tuple[float, float] = (5.0, 15.0),
    workers: int = 4,
    retries: int = 2,
    progress: Progress | None = None,
    deadline_s: float = MAX_URL_SECONDS,
    allowed_networks: Iterable[str] = (),
) -> list[UrlResult]:
    """Download every URL into `dest`; one result per URL, in the order given.

    `progress(done, total)` is called from the calling thread after each URL.
    `deadline_s` bounds each URL's time in all. Only public addresses are fetched, and those
    in `allowed_networks` ("127.0.0.1/32": a test's own server); by default none.
    """
    if isinstance(urls, str):
        raise ValueError("urls must be a list of URLs, not one string (use parse_url_list)")
    urls = list(urls)
    if workers < 1 or retries < 0 or max_image_bytes < 1 or max_total_bytes < 1:
        raise ValueError("workers, max_image_bytes and max_total_bytes must be >= 1, retries >= 0")
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)

    results: list[UrlResult | None] = [None] * len(urls)
    positions: dict[str, list[int]] = {}
    for i, url in enumerate(urls):
        positions.setdefault(url, []).append(i)
    done = 0

    def finish(result: UrlResult) -> None:
        nonlocal done
        for i in positions[result.url]:
            results[i] = result
            done += 1
            if progress:
                progress(done, len(urls))

    budget = _Budget(max_total_bytes)
    to_fetch = []
    # Settle what needs no request first; files kept earlier count towards the cap.
    for url in positions:
        existing = _existing_file(dest, url)
        if existing:
            budget.add_existing(existing.stat().st_size)
            finish(UrlResult(url, "skipped", file=existing.name))
        elif _scheme(url) not in ALLOWED_SCHEMES:
            finish(UrlResult(url, "failed", reason="only http(s) URLs are allowed"))
        else:
            to_fetch.append(url)

    downloader = Downloader(timeout, retries, max_image_bytes, deadline_s, allowed_networks)
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="urlimport")
    try:
        futures = [pool.submit(_import_one, url, dest, downloader, budget) for url in to_fetch]
        for future in as_completed(futures):
            finish(future.result())
    finally:
        # If the caller stops us (Streamlit's stop button raises in progress),
        # drop the queued downloads instead of waiting for all of them.
        pool.shutdown(wait=True, cancel_futures=True)
    return results


def _existing_file(dest: Path, url: str) -> Path | None:
    # Temp files start with "." (core.atomic), so a half-written download never matches.
    return next(iter(sorted(dest.glob(url_file_stem(url) + ".*"))), None)


def _import_one(url: str, dest: Path, downloader: Downloader, budget: "_Budget") -> UrlResult:
    try:
        if budget.full:
            raise Failed("total size cap reached")
        data, content_type = downloader.get(url)
        if content_type and not content_type.lower().startswith("image/"):
            raise Failed(f"not an image (content-type {content_type.split(';')[0].strip()})")
        extension = _image_extension(data)
        if not budget.take(len(data)):
            raise Failed("total size cap reached")
        target = dest / (url_file_stem(url) + extension)
        try:
            write_bytes(target, data)
        except OSError as exc:
            budget.give_back(len(data))
            raise Failed(f"could not save: {exc.strerror or exc}") from exc
        return UrlResult(url, "ok", file=target.name)
    except Failed as exc:
        return UrlResult(url, "failed", reason=str(exc))
    except Exception as exc:  # the contract is one result per URL, whatever the server sends
        return UrlResult(url, "failed", reason=f"unexpected error: {type(exc).__name__}: {exc}")


def _image_extension(data: bytes) -> str:
    """The file extension for `data`, after checking it decodes as the loader will decode it."""
    try:
        decode_image(data)
        return EXTENSIONS[image_format(data)]
    except UnusableImage as exc:
        raise Failed(str(exc)) from exc


class _Budget:
    """Running total of bytes kept, shared by the download threads."""

    def __init__(self, limit: int):
        self.limit = limit
        self.used = 0
        self.full = False  # once one file did not fit, the rest are refused without fetching
        self._lock = threading.Lock()

    def add_existing(self, n_bytes: int) -> None:
        with self._lock:
            self.used += n_bytes
            self.full = self.full or self.used >= self.limit

    def take(self, n_bytes: int) -> bool:
        """Reserve room for a file before writing it, so the cap holds on disk."""
        with self._lock:
            if self.full or self.used + n_bytes > self.limit:
                self.full = True
                return False
            self.used += n_bytes
            return True

    def give_back(self, n_bytes: int) -> None:
        with self._lock:
            self.used -= n_bytes
