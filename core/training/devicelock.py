"""One training run per GPU: an exclusive file lock per device.

A run that cannot take its device's lock waits as `queued` and starts when the
holder exits. The OS drops a flock when its process dies, so a crashed trainer
never leaves a stale lock behind, and the queue works without the app running.
"""
import fcntl
import os
import tempfile
from pathlib import Path


def locks_dir() -> Path:
    """Machine-wide (shared by every checkout); GANSCOPE_LOCKS overrides (tests)."""
    return Path(os.environ.get("GANSCOPE_LOCKS", Path(tempfile.gettempdir()) / "ganscope-locks"))


class DeviceLock:
    def __init__(self, key: str):
        self.key = key
        self.path = locks_dir() / f"{key}.lock"
        self.fd = None

    def try_acquire(self) -> bool:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self.fd = fd
        return True

    def holder(self) -> str:
        """The pid written by the current holder, for the 'queued' message."""
        try:
            return self.path.read_text().strip() or "?"
        except OSError:
            return "?"

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)  # closing the descriptor drops the flock
            self.fd = None
