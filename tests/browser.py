"""Fixtures for end-to-end tests: a live Streamlit server and a headless Chromium page.

Not a test module. Import the fixtures into a test module (see test_browser.py).
Playwright is imported lazily so that this file loads, and the tests skip,
where it is not installed.
"""
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-dev-shm-usage"]
START_TIMEOUT_S = 60
STOP_TIMEOUT_S = 10


def unavailable() -> str | None:
    """Why browser tests cannot run here, or None when they can."""
    if not Path(CHROMIUM).exists():
        return f"{CHROMIUM} is missing (scripts/test.sh installs it as root)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed (pip install -r requirements-dev.txt)"
    return None


# -- processes ---------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def alive(pid: int) -> bool:
    """A running process: not gone and not a zombie (PID 1 here may never reap orphans)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in "ZX"


def trainer_pids(runs: Path) -> set[int]:
    """The trainers that the runs' status files name (checking the command line, so a
    reused pid is never taken for one)."""
    pids = set()
    for status in runs.glob("*/status.json"):
        try:
            pid = int(json.loads(status.read_text())["pid"])
            if b"core.train" in Path(f"/proc/{pid}/cmdline").read_bytes():
                pids.add(pid)
        except (OSError, ValueError, KeyError, TypeError):
            pass  # unreadable status, or the process is gone
    return pids


def tagged_pids(tag: str) -> set[int]:
    """Live processes whose environment holds `tag`: the server and everything it started
    (trainers, their data workers), whatever process group they put themselves in."""
    pids = set()
    for environ in Path("/proc").glob("[0-9]*/environ"):
        try:
            if tag.encode() in environ.read_bytes().split(b"\0"):
                pids.add(int(environ.parent.name))
        except OSError:
            pass  # gone, or not ours to read
    return pids


def signal_pid(pid: int, sig: int, group: bool = False) -> None:
    try:
        os.killpg(pid, sig) if group else os.kill(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def leftovers(server: subprocess.Popen, runs: Path, tag: str) -> set[int]:
    server.poll()  # reap the server, else it lingers as a zombie of ours
    pids = trainer_pids(runs) | tagged_pids(tag) | ({server.pid} if server.returncode is None else set())
    return {pid for pid in pids if pid != os.getpid() and alive(pid)}


def stop_everything(server: subprocess.Popen, runs: Path, tag: str) -> set[int]:
    """SIGTERM the server's group and every trainer, SIGKILL what is left after
    STOP_TIMEOUT_S; return the pids still alive after that (should be none)."""
    signal_pid(server.pid, signal.SIGTERM, group=True)
    for pid in leftovers(server, runs, tag):
        signal_pid(pid, signal.SIGTERM)  # a trainer saves a checkpoint and exits
    deadline = time.monotonic() + STOP_TIMEOUT_S
    while leftovers(server, runs, tag) and time.monotonic() < deadline:
        time.sleep(0.2)
    signal_pid(server.pid, signal.SIGKILL, group=True)
    for pid in leftovers(server, runs, tag):
        signal_pid(pid, signal.SIGKILL)
    try:
        server.wait(timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        pass
    time.sleep(0.5)  # SIGKILL is asynchronous
    return leftovers(server, runs, tag)


def wait_healthy(url: str, server: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"streamlit exited with {server.returncode}; log:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as reply:
                if reply.read().strip() == b"ok":
                    return
        except OSError:
            pass  # not listening yet
        time.sleep(0.3)
    pytest.fail(f"streamlit not healthy after {START_TIMEOUT_S}s; log:\n{log.read_text()[-3000:]}")


# -- fixtures ----------------------------------------------------------------------
@pytest.fixture
def runs_dir(tmp_path) -> Path:
    """GANSCOPE_CHECKPOINTS of the app under test: where its runs go."""
    path = tmp_path / "runs"
    path.mkdir()
    return path


@contextmanager
def serving(work: Path, runs_dir: Path):
    """`streamlit run Home.py` on a free port over runs_dir; yields its base URL. Its log and
    caches go under `work`; every process it started is stopped afterwards."""
    port, log = free_port(), work / "streamlit.log"
    env = {**os.environ, "GANSCOPE_CHECKPOINTS": str(runs_dir), "PYTHONUNBUFFERED": "1",
           "GANSCOPE_CACHE": str(work / "cache"), "GANSCOPE_LOCKS": str(work / "locks"),
           "GANSCOPE_DATASETS": str(work / "datasets")}
    cmd = [sys.executable, "-m", "streamlit", "run", "Home.py", "--server.port", str(port),
           "--server.address", "127.0.0.1", "--server.headless", "true",
           "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none"]
    with open(log, "wb") as out:
        server = subprocess.Popen(cmd, cwd=REPO, env=env, stdin=subprocess.DEVNULL, stdout=out,
                                  stderr=subprocess.STDOUT, start_new_session=True)
    tag = f"GANSCOPE_CHECKPOINTS={runs_dir}"
    try:
        url = f"http://127.0.0.1:{port}"
        wait_healthy(url, server, log)
        yield url
    finally:
        left = stop_everything(server, runs_dir, tag)
        assert not left, f"processes left running after the test: {sorted(left)}"


@contextmanager
def chromium_page():
    """A headless Chromium page (Debian's chromium: Playwright cannot download its own here)."""
    from playwright.sync_api import sync_playwright
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(30_000)
            yield page
        finally:
            browser.close()


@contextmanager
def screenshot_on_failure(page, path: Path):
    """Turn any failure into an AssertionError that names a screenshot of the page."""
    try:
        yield
    except Exception as e:
        page.screenshot(path=str(path), full_page=True)
        raise AssertionError(f"{e}\nscreenshot: {path}") from e


def query(page) -> dict[str, str]:
    """The page's URL query parameters (one value each)."""
    return dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(page.url).query))


def wait_for_query(page, expected: dict, absent=(), timeout_ms: int = 30_000) -> None:
    """Wait until the URL has these parameters (and none of `absent`): Streamlit sends the
    URL update as its own message after the rerun."""
    page.wait_for_function(
        """([want, absent]) => { const q = new URLSearchParams(location.search);
            return Object.entries(want).every(([k, v]) => q.get(k) === v) && absent.every(k => !q.has(k)); }""",
        arg=[expected, list(absent)], timeout=timeout_ms)


@pytest.fixture
def app_server(tmp_path, runs_dir):
    """The app on a free port over runs_dir; its log: tmp_path/streamlit.log."""
    with serving(tmp_path, runs_dir) as url:
        yield url


@pytest.fixture
def browser_page():
    with chromium_page() as page:
        yield page
