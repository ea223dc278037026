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
import math
import os
import re
import threading
import time
from pathlib import Path

import numpy as np

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



class MetricsTail:
    """Reads metrics.jsonl incrementally: each call parses only the lines added
    since the last one. A rewritten file (a resume drops lines past its
    checkpoint, via an atomic replace) is noticed by its new inode and reread."""

    def __init__(self, path: Path | str):
        self.path = Path(path)
        self.rows: list[dict] = []
        self._offset = 0
        self._inode = None
        self._columns: dict[str, list] = {}
        self._tabled = 0

    def table(self) -> dict[str, np.ndarray]:
        """The rows as float columns (None -> NaN), converting only rows new since the last call."""
        rows = self.read()
        if self._tabled > len(rows):  # the file was rewritten
            self._columns, self._tabled = {}, 0
        for row in rows[self._tabled:]:
            for key in row.keys() - self._columns.keys():
                self._columns[key] = [math.nan] * self._tabled
            for key, col in self._columns.items():
                value = row.get(key)
                col.append(math.nan if value is None else value)
            self._tabled += 1
        return {key: np.asarray(col, dtype=float) for key, col in self._columns.items()}

    def read(self) -> list[dict]:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            self.rows, self._offset, self._inode = [], 0, None
            return self.rows
        if st.st_ino != self._inode or st.st_size < self._offset:
            self.rows, self._offset, self._inode = [], 0, st.st_ino
            self._columns, self._tabled = {}, 0
        if st.st_size > self._offset:
            with open(self.path, "rb") as f:
                f.seek(self._offset)
                chunk = f.read(st.st_size - self._offset)
            end = chunk.rfind(b"\n")  # a line without its newline is still being written
            if end >= 0:
                self.rows.extend(json.loads(line) for line in chunk[:end].split(b"\n") if line.strip())
                self._offset += end + 1
        return self.rows
