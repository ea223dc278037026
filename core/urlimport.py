"""Import images from a list of URLs (e.g. scraped social-media photos) into a folder.

Downloads run a few at a time, each bounded by a timeout and a size cap, and
every file is decoded with Pillow before it is kept. A bad URL only ever
yields a failed result with a short reason; it never stops the import.
Files are named after a hash of their URL, so a second run over the same list
skips what it already has without asking the server again.
"""
import csv
import hashlib
import io
import re
import threading
import time
import warnings
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

import requests
from PIL import Image, UnidentifiedImageError

from core.atomic import write_bytes

MAX_IMAGE_BYTES = 20 * 2**20  # per image
MAX_TOTAL_BYTES = 2 * 2**30  # per import
USER_AGENT = "GANscope-importer"
ALLOWED_SCHEMES = ("http", "https")
URL_COLUMNS = ("url", "image_url", "link")  # CSV header names, compared case-insensitively
BACKOFF_S = 0.5  # first retry waits this long, each later one twice as long
CHUNK_BYTES = 64 * 2**10
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


class _Failed(Exception):
    """This URL cannot be imported; str(exc) is the reason shown to the user."""


class _Retryable(_Failed):
    """A failure that may go away on its own: timeouts, dropped connections, 5xx, 429."""


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
    max_image_bytes: int = MAX_IMAGE_BYTES,
    max_total_bytes: int = MAX_TOTAL_BYTES,
    timeout: tuple[float, float] = (5.0, 15.0),
    workers: int = 4,
    retries: int = 2,
    progress: Progress | None = None,
    session: requests.Session | None = None,
) -> list[UrlResult]:
    """Download every URL into `dest`; one result per URL, in the order given.

    `progress(done, total)` is called from the calling thread after each URL.
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

    fetcher = _Fetcher(session, timeout, retries, max_image_bytes)
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="urlimport")
    try:
        futures = [pool.submit(_import_one, url, dest, fetcher, budget) for url in to_fetch]
        for future in as_completed(futures):
            finish(future.result())
    finally:
        # If the caller stops us (Streamlit's stop button raises in progress),
        # drop the queued downloads instead of waiting for all of them.
        pool.shutdown(wait=True, cancel_futures=True)
        fetcher.close()
    return results


def _existing_file(dest: Path, url: str) -> Path | None:
    # Temp files start with "." (core.atomic), so a half-written download never matches.
    return next(iter(sorted(dest.glob(url_file_stem(url) + ".*"))), None)


def _import_one(url: str, dest: Path, fetcher: "_Fetcher", budget: "_Budget") -> UrlResult:
    try:
        if budget.full:
            raise _Failed("total size cap reached")
        data, content_type = fetcher.fetch(url)
        if content_type and not content_type.lower().startswith("image/"):
            raise _Failed(f"not an image (content-type {content_type.split(';')[0].strip()})")
        extension = _image_extension(data)
        if not budget.take(len(data)):
            raise _Failed("total size cap reached")
        target = dest / (url_file_stem(url) + extension)
        try:
            write_bytes(target, data)
        except OSError as exc:
            budget.give_back(len(data))
            raise _Failed(f"could not save: {exc.strerror or exc}") from exc
        return UrlResult(url, "ok", file=target.name)
    except _Failed as exc:
        return UrlResult(url, "failed", reason=str(exc))
    except Exception as exc:  # the contract is one result per URL, whatever the server sends
        return UrlResult(url, "failed", reason=f"unexpected error: {type(exc).__name__}: {exc}")


def _image_extension(data: bytes) -> str:
    """The file extension for `data`, after checking Pillow can fully decode it."""
    image_format = _decoded_format(data)
    if image_format not in EXTENSIONS:
        raise _Failed(f"unsupported image format {image_format}")
    return EXTENSIONS[image_format]


def _decoded_format(data: bytes) -> str:
    with warnings.catch_warnings():
        # Pillow only warns between 1x and 2x MAX_IMAGE_PIXELS; refuse those too.
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            with Image.open(io.BytesIO(data)) as image:
                image.verify()  # checks chunk CRCs and structure without decoding
            with Image.open(io.BytesIO(data)) as image:  # verify() leaves the image unusable
                image.load()  # decode the pixels: catches truncated data
                return image.format
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise _Failed(_bomb_reason(exc)) from exc
        except UnidentifiedImageError as exc:
            raise _Failed("not a decodable image: unrecognised image data") from exc
        except Exception as exc:  # Pillow raises many types on bad data
            raise _Failed(f"not a decodable image: {exc}") from exc


def _bomb_reason(exc: Exception) -> str:
    pixels = re.search(r"\((\d+) pixels\)", str(exc))
    return f"decompression bomb ({pixels.group(1)} pixels)" if pixels else "decompression bomb"


def _size_text(n_bytes: int) -> str:
    if n_bytes >= 2**20:
        return f"{n_bytes / 2**20:.3g} MB"
    if n_bytes >= 2**10:
        return f"{n_bytes / 2**10:.3g} KB"
    return f"{n_bytes} bytes"


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


class _Fetcher:
    """HTTP GETs with timeouts, a size cap and retries; one requests.Session per thread."""

    def __init__(self, session, timeout, retries: int, max_bytes: int):
        self.shared_session = session
        self.timeout = timeout
        self.retries = retries
        self.max_bytes = max_bytes
        self._local = threading.local()
        self._own_sessions: list[requests.Session] = []
        self._lock = threading.Lock()

    def fetch(self, url: str) -> tuple[bytes, str | None]:
        """(body, content type) of a 2xx response; raises _Failed with the reason."""
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(BACKOFF_S * 2 ** (attempt - 1))
            try:
                return self._fetch_once(url)
            except _Retryable as exc:
                last = exc
        raise last

    def close(self) -> None:
        for session in self._own_sessions:
            session.close()

    def _session(self) -> requests.Session:
        # requests.Session is not documented as thread-safe, so each worker gets its own.
        if self.shared_session is not None:
            return self.shared_session
        if not hasattr(self._local, "session"):
            self._local.session = requests.Session()
            with self._lock:
                self._own_sessions.append(self._local.session)
        return self._local.session

    def _fetch_once(self, url: str) -> tuple[bytes, str | None]:
        try:
            with self._session().get(url, stream=True, timeout=self.timeout,
                                     headers={"User-Agent": USER_AGENT}) as response:
                status = response.status_code
                if status == 429 or status >= 500:
                    raise _Retryable(f"HTTP {status}")
                if status >= 300:  # redirects are followed; what is left is an error
                    raise _Failed(f"HTTP {status}")
                return self._read_capped(response), response.headers.get("Content-Type")
        except requests.Timeout as exc:
            raise _Retryable("timed out") from exc
        except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError) as exc:
            # A read timeout while streaming the body arrives as a ConnectionError.
            reason = "timed out" if "timed out" in str(exc).lower() else "connection failed"
            raise _Retryable(reason) from exc
        except (requests.exceptions.InvalidURL, requests.exceptions.InvalidSchema,
                requests.exceptions.MissingSchema) as exc:
            raise _Failed("invalid URL") from exc
        except requests.RequestException as exc:
            raise _Failed(f"request failed ({type(exc).__name__})") from exc

    def _read_capped(self, response: requests.Response) -> bytes:
        too_big = _Failed(f"over the {_size_text(self.max_bytes)} size cap")
        declared = response.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > self.max_bytes:
            raise too_big
        body = bytearray()
        for chunk in response.iter_content(CHUNK_BYTES):
            body += chunk
            if len(body) > self.max_bytes:
                raise too_big  # stop reading: the server may send far more
        return bytes(body)
