"""The disk cache's size limit: decoded data sets and image features under cache_dir().

Entries are recomputed when missing, so the least recently used ones can go. Every hit
touches its file and every write prunes the cache back under its limit, 5 GB unless
GANSCOPE_CACHE_GB says otherwise (0 = no limit).
"""
import os
from pathlib import Path

from core.paths import cache_dir

DEFAULT_LIMIT_GB = 5.0


def limit_bytes() -> int:
    try:
        gb = float(os.environ.get("GANSCOPE_CACHE_GB", DEFAULT_LIMIT_GB))
    except ValueError:
        gb = DEFAULT_LIMIT_GB
    return int(gb * 2**30)


def entries() -> list[tuple[Path, os.stat_result]]:
    """Each cached file with its stat; another process may prune at the same time, so a file
    that is gone by the time it is looked at is simply not listed."""
    root = cache_dir()
    found = []
    for p in root.rglob("*") if root.exists() else ():
        if p.name.startswith("."):
            continue
        try:
            stat = p.stat()
        except OSError:
            continue
        if p.is_file():
            found.append((p, stat))
    return found


def size_bytes() -> int:
    return sum(stat.st_size for _, stat in entries())


def touch(path: Path) -> None:
    """A hit: this entry was just used."""
    try:
        os.utime(path)
    except OSError:
        pass


def prune(keep: Path | None = None) -> list[Path]:
    """Delete the least recently used entries until the cache fits its limit (never `keep`,
    the entry just written). Returns what was deleted."""
    limit = limit_bytes()
    if limit <= 0:
        return []
    files = sorted(entries(), key=lambda entry: entry[1].st_mtime)
    total, removed = sum(stat.st_size for _, stat in files), []
    for path, stat in files:
        if total <= limit:
            break
        if keep is not None and path == keep:
            continue
        total -= stat.st_size
        path.unlink(missing_ok=True)
        removed.append(path)
    return removed
