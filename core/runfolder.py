"""The run folder: the only thing the trainer and the dashboard share.

    <run>/config.json      every setting, resolved              (atomic)
    <run>/status.json      state, pid, counters, heartbeat      (atomic)
    <run>/metrics.jsonl    one JSON line per logging interval   (append + flush)
    <run>/latents.pt       the fixed latents behind every sample grid
    <run>/samples/         step-XXXXXXXX.png grids, reals.png   (atomic)
    <run>/checkpoints/     latest.pt, step-XXXXXXXX.pt          (atomic)
    <run>/train.log        readable log

Readers of metrics.jsonl must ignore a last line without a trailing newline:
it may be mid-write.
"""
import json
import os
import re
import threading
import time
from pathlib import Path

from . import atomic

STATES = ("starting", "running", "stopping", "stopped", "finished", "failed")
STEP_FILE = re.compile(r"^step-(\d{8})\.(png|pt)$")


def step_name(step: int, ext: str) -> str:
    return f"step-{step:08d}.{ext}"


class RunFolder:
    def __init__(self, path: Path | str):
        self.path = Path(path)
        self.config = self.path / "config.json"
        self.status = self.path / "status.json"
        self.metrics = self.path / "metrics.jsonl"
        self.log = self.path / "train.log"
        self.latents = self.path / "latents.pt"
        self.samples = self.path / "samples"
        self.checkpoints = self.path / "checkpoints"
        self.latest = self.checkpoints / "latest.pt"
        self.reals = self.samples / "reals.png"

    def create(self) -> None:
        self.samples.mkdir(parents=True, exist_ok=True)
        self.checkpoints.mkdir(parents=True, exist_ok=True)

    def is_empty(self) -> bool:
        return not self.path.exists() or not any(self.path.iterdir())

    # -- config / status ---------------------------------------------------
    def read_config(self) -> dict:
        return json.loads(self.config.read_text())

    def write_config(self, config: dict) -> None:
        atomic.write_json(self.config, config)

    def read_status(self) -> dict:
        return json.loads(self.status.read_text())

    # -- metrics -----------------------------------------------------------
    def append_metrics(self, row: dict) -> None:
        with open(self.metrics, "a", encoding="utf-8") as f:
            f.write(json.dumps(row) + "\n")
            f.flush()

    def read_metrics(self) -> list[dict]:
        if not self.metrics.exists():
            return []
        lines = self.metrics.read_text(encoding="utf-8").split("\n")
        return [json.loads(line) for line in lines[:-1] if line.strip()]

    def truncate_metrics(self, after_step: int) -> int:
        """Drop lines past `after_step` (written after the checkpoint we go back to)."""
        rows = self.read_metrics()
        kept = [r for r in rows if r["step"] <= after_step]
        if len(kept) != len(rows):
            atomic.write_text(self.metrics, "".join(json.dumps(r) + "\n" for r in kept))
        return len(rows) - len(kept)

    # -- samples and checkpoints -------------------------------------------
    def sample_path(self, step: int) -> Path:
        return self.samples / step_name(step, "png")

    def snapshot_path(self, step: int) -> Path:
        return self.checkpoints / step_name(step, "pt")

    def sample_steps(self) -> list[int]:
        return _steps_in(self.samples, "png")

    def snapshot_steps(self) -> list[int]:
        return _steps_in(self.checkpoints, "pt")


def _steps_in(folder: Path, ext: str) -> list[int]:
    if not folder.exists():
        return []
    found = (STEP_FILE.match(p.name) for p in folder.iterdir())
    return sorted(int(m.group(1)) for m in found if m and m.group(2) == ext)


class StatusWriter:
    """Keeps status.json fresh from a background thread.

    The training loop only updates a dict (no file I/O per step); the thread
    rewrites status.json atomically every `interval` seconds, so the heartbeat
    stays fresh even while one step or a data load takes long.
    """

    def __init__(self, run: RunFolder, interval: float = 3.0, **fields):
        self.run = run
        self.interval = interval
        self.fields = {"pid": os.getpid(), "started_at": time.time(), "message": "", **fields}
        self.lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="status-heartbeat", daemon=True)

    def start(self) -> None:
        self.write()
        self._thread.start()

    def update(self, **fields) -> None:
        with self.lock:
            self.fields.update(fields)

    def write(self, **fields) -> None:
        with self.lock:
            self.fields.update(fields)
            now = time.time()
            self.fields["heartbeat"] = now
            self.fields["updated_at"] = now
            atomic.write_json(self.run.status, self.fields)

    def close(self, **final_fields) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        self.write(**final_fields)

    def _beat(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.write()
            except OSError:
                pass  # a full disk must not kill training; the next beat retries


def list_runs(root: Path) -> list[dict]:
    """Run folders under `root` with their status (newest first); unreadable ones say so."""
    runs = []
    for path in sorted(p for p in Path(root).iterdir() if p.is_dir() and not p.name.startswith(".")) \
            if Path(root).exists() else []:
        run = RunFolder(path)
        if not run.config.exists():
            continue
        try:
            status = run.read_status()
        except (OSError, ValueError):
            status = {"state": "unknown"}
        runs.append({"name": path.name, "path": path, **status})
    return sorted(runs, key=lambda r: r.get("updated_at", 0), reverse=True)
