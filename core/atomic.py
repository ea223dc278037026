"""Atomic file writes: readers (the dashboard) never see a half-written file.

Each write goes to a temp file in the same folder, is flushed to disk and then
renamed over the target, which POSIX guarantees to be atomic. Files that several
writers change (a run's directions, quiz answers, evaluations) are read-modified-written
with `update_json`, under an exclusive lock, so no update is lost.
"""
import fcntl
import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_path(target: Path | str):
    """Yield a temp path next to `target`; rename it over `target` on success."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_bytes(target: Path | str, data: bytes) -> None:
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)


def write_text(target: Path | str, text: str) -> None:
    write_bytes(target, text.encode("utf-8"))


def write_json(target: Path | str, obj) -> None:
    write_text(target, json.dumps(obj, indent=2, sort_keys=True) + "\n")


@contextmanager
def locked(target: Path | str):
    """Hold an exclusive OS lock for `target` (on a sibling ".NAME.lock" file) while the block runs.
    The OS drops the lock when the holder exits, however it exits. The lock file is left in
    place: deleting it could let two writers lock two different files."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(target.parent / f".{target.name}.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def update_json(target: Path | str, change) -> dict:
    """Read-modify-write a JSON object without losing another writer's update (two browser
    tabs, two sessions): under `locked`, read the file ({} when there is none), apply
    change(dict) -> dict and write the result atomically. Returns what was written.
    Readers need no lock: they see the old file or the new one, never half of either."""
    target = Path(target)
    with locked(target):
        try:
            current = json.loads(target.read_text()) if target.exists() else {}
        except ValueError:
            current = None
        if not isinstance(current, dict):  # damaged: kept aside for the user, then started afresh
            os.replace(target, target.with_name(target.name + ".damaged"))
            current = {}
        updated = change(current)
        write_json(target, updated)
        return updated
