"""Shared fixtures: tiny real image folders and a bounded trainer runner."""
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

REPO = Path(__file__).resolve().parent.parent
TRAINER_TIMEOUT_S = 180


@pytest.fixture(autouse=True)
def isolated_state(tmp_path, monkeypatch):
    """Never touch the checkout's data cache, runs or the machine's device locks."""
    monkeypatch.setenv("GANSCOPE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("GANSCOPE_LOCKS", str(tmp_path / "locks"))
    monkeypatch.setenv("GANSCOPE_DATASETS", str(tmp_path / "datasets"))


def make_images(folder: Path, n: int, size=(40, 48), classes=("a", "b"), seed=0) -> Path:
    """n small PNGs: smooth colour blobs (real, decodable images), split into class folders."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size[0], 0:size[1]]
    for i in range(n):
        cy, cx = rng.uniform(0, size[0]), rng.uniform(0, size[1])
        blob = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * rng.uniform(4, 12) ** 2))
        colour = rng.uniform(0, 255, 3)
        pixels = (255 - blob[..., None] * (255 - colour)).astype(np.uint8)
        sub = folder / classes[i % len(classes)] if classes else folder
        sub.mkdir(parents=True, exist_ok=True)
        Image.fromarray(pixels).save(sub / f"img{i:03d}.png")
    return folder


@pytest.fixture
def runs_root(tmp_path, monkeypatch):
    """An empty checkpoints folder for the app; any run still active afterwards is stopped."""
    from core.runs.registry import Registry
    root = tmp_path / "checkpoints"
    root.mkdir()
    monkeypatch.setenv("GANSCOPE_CHECKPOINTS", str(root))
    yield root
    registry = Registry(root)
    for run in registry.runs():
        if run.active:
            registry.stop(run.name, timeout=20)


@pytest.fixture
def image_folder(tmp_path) -> Path:
    return make_images(tmp_path / "images", 12)


# Small and fast: a 32 px model a few channels wide, on the tutorial's networks (the fastest
# to start; tests/test_new_networks.py trains the default recipe's).
# No health check (its EfficientNet pass per grid): tests/test_health.py trains with it.
TINY = ["--recipe", "small-data", "--res", "32", "--batch", "8", "--channels", "8", "--log-every", "10",
        "--sample-kimg", "0.2", "--snapshot-kimg", "0.2", "--no-health"]


def train_cmd(*args) -> list[str]:
    return [sys.executable, "-m", "core.train", *map(str, args)]


def run_trainer(*args, timeout=TRAINER_TIMEOUT_S) -> subprocess.CompletedProcess:
    return subprocess.run(train_cmd(*args), cwd=REPO, capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, "PYTHONUNBUFFERED": "1"})


def train_tiny_run(out: Path, images: Path, *extra) -> Path:
    """A finished 32 px run on `images` in a few seconds, for the pages to show (the tutorial's
    networks: the fastest; the pages meet the projected recipe's in the demo run)."""
    result = run_trainer("--data", images, "--out", out, "--recipe", "small-data", "--res", "32", "--batch", "8",
                         "--channels", "8", "--kimg", "0.08", "--no-health", *extra)
    assert result.returncode == 0, result.stderr
    return out


def start_trainer(*args, log_path: Path) -> subprocess.Popen:
    """A trainer in the background; the caller must stop it (see stop_process)."""
    with open(log_path, "w") as out:
        return subprocess.Popen(train_cmd(*args), cwd=REPO, stdout=out, stderr=subprocess.STDOUT,
                                env={**os.environ, "PYTHONUNBUFFERED": "1"})


def stop_process(proc: subprocess.Popen, timeout=60) -> int:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise


def wait_for(predicate, timeout=90, interval=0.2, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout}s waiting for {what}")


def shown(markdown: str) -> str:
    """What a person reads from a Markdown string: the pages escape text from files and
    names (ui/text.py), which renders as the plain characters."""
    return re.sub(r"\\(.)", r"\1", markdown)


def exit_code_and_stderr(main, argv, capsys) -> tuple[int, str]:
    """A CLI's main(argv) in this process, for its many bad-option cases: `python -m` only adds
    sys.exit(main()), which each CLI's test proves once in a real process; a fresh interpreter
    per case cost seconds of imports each."""
    capsys.readouterr()
    try:
        code = main([str(a) for a in argv])
    except SystemExit as e:  # argparse's own errors
        code = e.code
    return code, capsys.readouterr().err


def read_json(path: Path):
    return json.loads(Path(path).read_text())


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]


@pytest.fixture
def image_server():
    """A real HTTP server on 127.0.0.1: /img/<n>.png are images, /page.html is HTML, anything
    else 404. Yields (base URL, Counter of hits per path); stopped afterwards."""
    import io
    import threading
    from collections import Counter
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    hits = Counter()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            hits[self.path] += 1
            if self.path.startswith("/img/"):
                buf = io.BytesIO()
                shade = sum(map(ord, self.path)) % 256
                Image.new("RGB", (48, 40), (shade, 255 - shade, 128)).save(buf, "PNG")
                body, kind = buf.getvalue(), "image/png"
            elif self.path == "/page.html":
                body, kind = b"<html>not an image</html>", "text/html"
            else:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", hits
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
