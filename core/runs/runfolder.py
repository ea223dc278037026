"""The run folder: the only thing the trainer and the dashboard share.

This module is the one that knows the folder's files, the states a run can be in,
when a trainer counts as alive, and how status.json is written (StatusWriter for
the trainer, `mark` for a launcher that finds its trainer gone).

    <run>/config.json      every setting, resolved              (atomic)
    <run>/holdout.json     the images kept back from training (--holdout) (atomic, once, by the trainer)
    <run>/status.json      state, pid, counters, heartbeat      (atomic)
    <run>/metrics.jsonl    one JSON line per logging interval   (append + flush)
    <run>/latents.pt       the fixed latents behind every sample grid
    <run>/samples/         step-XXXXXXXX.png grids, reals.png   (atomic)
    <run>/checkpoints/     latest.pt, step-XXXXXXXX.pt          (atomic)
    <run>/tensorboard/     TensorBoard event files, with --tensorboard (by the trainer)
    <run>/health.json      grid numbers and findings (core.health) (atomic, by the trainer or core.health --write)
    <run>/train.log        readable log (appended; a launcher sends the trainer's output here too)
    <run>/notes.md         the user's notes                     (atomic, by the app)
    <run>/directions.json  named edit directions                (atomic, by the Latent Lab)
    <run>/projections.json your pictures' latents, by name      (atomic, by the Latent Lab or core.project)
    <run>/evals/           metrics.json, copying.json, quiz.json, reference.json
                                                                (atomic, by Real vs Fake or core.evaluate)

Readers of metrics.jsonl must ignore a last line without a trailing newline:
it may be mid-write.
"""
import fcntl
import json
import logging
import math
import os
import re
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from core import atomic

log = logging.getLogger("ganscope.train")
STATES = ("starting", "queued", "running", "stopping", "stopped", "finished", "failed")
ACTIVE = ("starting", "queued", "running", "stopping")  # a trainer process holds the folder
# Shown, never written: an active state whose trainer is gone.
CRASHED = "crashed"
RESUMABLE = ("stopped", "finished", "failed", CRASHED)
HEARTBEAT_STALE_S = 60  # the trainer's heartbeat thread writes every 3 s: after this, say it is not reporting
TRAINER_MODULE = b"core.train"  # in the command line of every trainer process
STEP_FILE = re.compile(r"^step-(\d{8})\.(png|pt)$")


def step_name(step: int, ext: str) -> str:
    return f"step-{step:08d}.{ext}"


def process_alive(pid) -> bool:
    """True for a live trainer process; false for a dead pid, a zombie or a reused pid."""
    try:
        pid = int(pid)
        os.kill(pid, 0)
    except (OSError, TypeError, ValueError):
        return False
    proc = Path(f"/proc/{pid}")
    if proc.exists():  # Linux: rule out zombies and pids reused by other programs
        try:
            if proc.joinpath("stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
                return False
            return TRAINER_MODULE in proc.joinpath("cmdline").read_bytes()
        except OSError:
            return False
    return True


def effective_state(status: dict, alive: bool) -> str:
    """The state to show: an active one whose trainer is gone is `crashed`."""
    state = status.get("state", "unknown")
    return CRASHED if state in ACTIVE and not alive else state


class RunLock:
    """An OS lock on the run folder, held by its trainer until its final status is written. The OS drops it
    when the process ends, however it ends, so it tells a live trainer from a dead one even
    when the heartbeat cannot be written (a full disk); delete, rename and resume take it first."""

    def __init__(self, path: Path):
        self.path, self.fd = path, None

    def acquire(self, tries: int = 5) -> bool:
        """Take the lock if nobody holds it. A few quick retries ride out another process's
        momentary probe (held_elsewhere), which must not look like a live trainer."""
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        for attempt in range(tries):
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                self.fd = fd
                return True
            except BlockingIOError:
                time.sleep(0.05)
        os.close(fd)
        return False

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)  # closing drops the lock
            self.fd = None

    def held_elsewhere(self) -> bool:
        """Whether another process holds it (without keeping it)."""
        if self.fd is not None:
            return False
        try:  # read-only and never created: readers may lack write access, and a delete may be under way
            fd = os.open(self.path, os.O_RDONLY)
        except OSError:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            return False
        except BlockingIOError:
            return True
        finally:
            os.close(fd)


class RunFolder:
    def __init__(self, path: Path | str):
        self.path = Path(path)
        self.config_file = self.path / "config.json"
        self.status_file = self.path / "status.json"
        self.metrics_file = self.path / "metrics.jsonl"
        self.log_file = self.path / "train.log"
        self.latents_file = self.path / "latents.pt"
        self.notes_file = self.path / "notes.md"
        self.directions_file = self.path / "directions.json"
        self.health_file = self.path / "health.json"
        self.holdout_file = self.path / "holdout.json"
        self.tensorboard = self.path / "tensorboard"
        self.evals = self.path / "evals"
        self.lock_file = self.path / ".trainer.lock"
        self.samples = self.path / "samples"
        self.checkpoints = self.path / "checkpoints"
        self.latest = self.checkpoints / "latest.pt"
        self.reals = self.samples / "reals.png"
        self._lock = RunLock(self.lock_file)

    def create(self) -> None:
        self.samples.mkdir(parents=True, exist_ok=True)
        self.checkpoints.mkdir(parents=True, exist_ok=True)

    def holds_run(self) -> bool:
        """A run has been started here (train.log alone may be a launcher's)."""
        return self.config_file.exists() or self.status_file.exists()

    # -- who may train here ------------------------------------------------------------
    def trainer_alive(self) -> bool:
        """Whether a trainer process holds this folder now."""
        return self._lock.held_elsewhere()

    def state(self, status: dict | None = None) -> str:
        status = self.read_status() if status is None else status
        return effective_state(status, self.trainer_alive()) if status else "unknown"

    def silent_for(self, status: dict) -> float | None:
        """Seconds since a live trainer last wrote its status, when that is worryingly long."""
        quiet = time.time() - status.get("heartbeat", 0)
        return quiet if status.get("state") in ACTIVE and quiet > HEARTBEAT_STALE_S else None

    def claim(self, resume: bool) -> bool:
        """The trainer's checks before it writes anything here; raises ValueError with the reason.
        On success this process holds the folder's lock until it exits. Returns whether there
        is a checkpoint to continue from (only when resuming)."""
        if self.path.exists() and not self.path.is_dir():
            raise ValueError(f"--out {self.path} exists and is not a folder")
        if resume and not self.config_file.exists():
            raise ValueError(f"nothing to resume in {self.path}: no config.json")
        if not resume and self.path.exists() and any(
                p not in (self.log_file, self.lock_file) for p in self.path.iterdir()):
            raise ValueError(f"--out {self.path} already holds a run or other files; "
                             f"use --resume to continue it, or choose a new --out")
        self.path.mkdir(parents=True, exist_ok=True)
        if not self._lock.acquire():
            status = self.read_status()
            raise ValueError(f"run {self.path} is already being trained by pid {status.get('pid', '?')}")
        return resume and self.latest.exists()

    def release(self) -> None:
        """The trainer is done with the folder (its final status is written)."""
        self._lock.release()

    @contextmanager
    def exclusive(self):
        """For delete and rename: hold the folder's lock meanwhile, so no trainer can start;
        raise ValueError while a trainer holds it."""
        lock = RunLock(self.lock_file)
        if self.path.is_dir() and not lock.acquire():
            raise ValueError(f"{self.path.name} is still being trained (its trainer holds the folder); stop it first")
        try:
            yield
        finally:
            lock.release()

    def remove_temp_files(self) -> int:
        """The trainer's own temp files from atomic writes cut short by a kill: nothing else removes
        them. The app's (notes, directions, evals) may belong to a write in progress: left alone."""
        own = [f".{f.name}.*.tmp" for f in (self.status_file, self.config_file, self.metrics_file, self.latents_file,
                                             self.health_file)]
        stale = [p for pattern in own for p in self.path.glob(pattern)]
        stale += [p for folder in (self.samples, self.checkpoints) if folder.is_dir() for p in folder.glob(".*.tmp")]
        for p in stale:
            p.unlink(missing_ok=True)
        return len(stale)

    def restart(self) -> None:
        """A resumed run that never saved a checkpoint starts over: drop what its first try wrote."""
        for stale in [self.metrics_file, self.latents_file, self.health_file, *self.samples.glob("*.png"),
                      *self.tensorboard.glob("events.*")]:
            stale.unlink(missing_ok=True)

    # -- config / status ---------------------------------------------------------------
    def read_config(self) -> dict:
        return _read_json(self.config_file)

    def write_config(self, config: dict) -> None:
        atomic.write_json(self.config_file, config)

    def read_holdout(self) -> list[str] | None:
        """The names of the images kept back from training; None for a run from before --holdout
        (or a damaged file: then nothing counts as held out)."""
        names = _read_json(self.holdout_file).get("names")
        return names if isinstance(names, list) and all(isinstance(n, str) for n in names) else None

    def write_holdout(self, fraction: float, names: list[str]) -> None:
        atomic.write_json(self.holdout_file, {"fraction": fraction, "names": names})

    def read_health(self) -> dict:
        return _read_json(self.health_file)

    def write_health(self, health: dict) -> None:
        atomic.write_json(self.health_file, health)

    def read_status(self) -> dict:
        """status.json, or {} when there is none (yet) or it cannot be read; a number field
        holding something else (a damaged or edited file) is left out."""
        status = _read_json(self.status_file)
        return {k: v for k, v in status.items() if k not in STATUS_NUMBERS or _is_number(v)}

    def mark(self, state: str, message: str, **fields) -> None:
        """For a launcher whose trainer could not write its own final state (killed, or gone
        before it started): the last status, with this state and message."""
        assert state in STATES, state
        now = time.time()
        atomic.write_json(self.status_file, {**self.read_status(), **fields, "state": state, "message": message,
                                             "updated_at": now, "heartbeat": now})

    # -- metrics -----------------------------------------------------------------------
    def append_metrics(self, row: dict) -> None:
        with open(self.metrics_file, "a", encoding="utf-8") as f:
            f.write(json.dumps(row) + "\n")
            f.flush()

    def read_metrics(self) -> list[dict]:
        if not self.metrics_file.exists():
            return []
        lines = self.metrics_file.read_text(encoding="utf-8", errors="replace").split("\n")
        return parse_lines(lines[:-1])

    def truncate_metrics(self, after_step: int) -> int:
        """Keep the lines up to `after_step` (the checkpoint we go back to), and only whole,
        readable ones: a line cut short by a crash is dropped here, not glued to the next."""
        text = self.metrics_file.read_text(encoding="utf-8", errors="replace") if self.metrics_file.exists() else ""
        kept = [r for r in self.read_metrics() if r.get("step", math.inf) <= after_step]
        clean = "".join(json.dumps(r) + "\n" for r in kept)
        if clean != text:
            atomic.write_text(self.metrics_file, clean)
        return text.count("\n") - len(kept)

    # -- samples and checkpoints -------------------------------------------------------
    def sample_path(self, step: int) -> Path:
        return self.samples / step_name(step, "png")

    def snapshot_path(self, step: int) -> Path:
        return self.checkpoints / step_name(step, "pt")

    def sample_steps(self) -> list[int]:
        return _steps_in(self.samples, "png")

    def snapshot_steps(self) -> list[int]:
        return _steps_in(self.checkpoints, "pt")

    def drop_samples_after(self, step: int) -> None:
        """A rewound run: the grids of the steps it goes back over."""
        for later in self.sample_steps():
            if later > step:
                self.sample_path(later).unlink(missing_ok=True)

    def prune_snapshots(self, keep: int, spare=()) -> list[int]:
        """Delete all but the newest `keep` snapshots (0 = keep all) and those in `spare`; returns
        the steps deleted."""
        old = [s for s in self.snapshot_steps()[:-keep] if s not in spare] if keep else []
        for step in old:
            self.snapshot_path(step).unlink(missing_ok=True)
        return old


def _steps_in(folder: Path, ext: str) -> list[int]:
    if not folder.exists():
        return []
    found = (STEP_FILE.match(p.name) for p in folder.iterdir())
    return sorted(int(m.group(1)) for m in found if m and m.group(2) == ext)


def parse_lines(lines) -> list[dict]:
    """JSON lines as dicts; a line that does not parse (a crash mid-write) is skipped."""
    rows = []
    for line in lines:
        if line.strip():
            try:
                row = json.loads(line)
            except ValueError:
                continue
            if isinstance(row, dict):
                rows.append(row)
    return rows


STATUS_NUMBERS = {"step", "kimg", "img_per_sec", "progress", "heartbeat", "updated_at", "started_at", "pid",
                  "n_images", "n_held_out", "n_classes", "skipped", "target_kimg", "target_minutes"}


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _read_json(path: Path) -> dict:
    try:
        value = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


class StatusWriter:
    """Keeps status.json fresh from a background thread.

    The training loop only updates a dict (no file I/O per step); the thread
    rewrites status.json atomically every `interval` seconds, so the heartbeat
    stays fresh even while one step or a data load takes long.
    """

    def __init__(self, run: RunFolder, interval: float = 3.0, **fields):
        """Only the trainer writes its status through this (rank 0 of several processes)."""
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
            atomic.write_json(self.run.status_file, self.fields)

    def close(self, **final_fields) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        self.write(**final_fields)
        if self.fields.get("state") not in ACTIVE:
            self.run.release()  # done writing: the folder is free now, not only once the process has exited

    def _beat(self) -> None:
        failing = False
        while not self._stop.wait(self.interval):
            try:
                self.write()
            except OSError as e:  # a full disk must not kill training: say so, and retry next beat
                if not failing:
                    log.warning("cannot write %s (%s); training goes on, and the app shows the run as not "
                                "reporting until it can", self.run.status_file.name, e.strerror or e)
                failing = True
            else:
                if failing:
                    log.info("%s is written again", self.run.status_file.name)
                failing = False



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
                self.rows.extend(parse_lines(chunk[:end].split(b"\n")))
                self._offset += end + 1
        return self.rows
