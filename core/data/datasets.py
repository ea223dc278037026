"""Registered data sets: imported files that are never modified, and curated versions.

    data/sets/<name>/          (GANSCOPE_DATASETS overrides data/sets)
      dataset.json             name, created, count, one entry per import
      files/                   the imported files as they came (first-level subfolders = classes)
      versions/v<N>.json       a version: which files, which crop mode; a training source (--data)
      scan.json                per-file facts for the report (a cache, see core.data.curate)
      .dataset.json.lock       held (core.atomic.locked) by an import or a version being saved

Curation never deletes or edits a file: it writes a new version that lists fewer
files. Every import writes a version too (the previous one plus the new files),
so the latest version is always what the user last saw. Two imports into one set
(two browser tabs) take turns on the set's lock, and files and versions are
created exclusively, so neither can overwrite the other's file or version.
"""
import json
import os
import re
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from core import atomic
from core.data.images import FITS
from core.data.imageset import MANIFEST_FORMAT, read_manifest
from core.data.sources import DataError
from core.paths import datasets_dir

NAME_RULE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
FILES = "files"
VERSIONS = "versions"
SKIP_SEPARATOR = ": "  # between name and reason of a skipped file in dataset.json
SKIPS_KEPT = 100  # skipped files named per import in dataset.json (the page reads it on every load)
_held = threading.local()  # the data set locks this thread holds: taking one again is a no-op


class DataSetError(Exception):
    """A request about data sets that cannot be done; the message is shown as-is."""


def validate_name(name: str) -> str:
    """Data set names are single folder names: no separators, no '..', nothing hidden."""
    name = (name or "").strip()
    if not NAME_RULE.match(name) or ".." in name:
        raise DataSetError(f"invalid data set name {name!r}: use 1-64 letters, digits, '.', '_' or '-', "
                           "starting with a letter or digit")
    return name


@dataclass
class Version:
    number: int
    path: Path      # the manifest: pass it to the trainer as --data
    files: list[str]
    fit: str
    note: str
    created: float

    @property
    def label(self) -> str:
        return f"v{self.number} · {len(self.files)} images · {self.fit}" + (f" · {self.note}" if self.note else "")


class DataSet:
    def __init__(self, path: Path):
        self.path = path
        self.name = path.name
        self.files_dir = path / FILES
        self.versions_dir = path / VERSIONS

    @property
    def meta(self) -> dict:
        return json.loads((self.path / "dataset.json").read_text())

    def file_names(self) -> list[str]:
        """Every imported file, relative to files/, "/" separated, sorted."""
        if not self.files_dir.is_dir():
            return []
        return sorted(p.relative_to(self.files_dir).as_posix() for p in self.files_dir.rglob("*")
                      if p.is_file() and not p.name.startswith("."))

    @contextmanager
    def lock(self) -> Iterator[None]:
        """Exclusive use of this data set, between threads and processes alike (an OS file lock,
        dropped by the OS if the holder dies). Re-entrant within a thread."""
        held = getattr(_held, "paths", None)
        if held is None:
            held = _held.paths = set()
        key = os.path.realpath(self.path)
        if key in held:
            yield
            return
        with atomic.locked(self.path / "dataset.json"):
            held.add(key)
            try:
                yield
            finally:
                held.discard(key)

    def add_file(self, name: str, data: bytes) -> str:
        """Store `data` under files/`name`, or name-2, name-3... when that is taken; never over
        another file. Returns the name used. Raises OSError when it cannot be stored (a name too
        long, a file where a folder is needed); the folders it made are removed again."""
        folder = (self.files_dir / name).parent
        made = []
        try:
            made = [p for p in [folder, *folder.parents] if self.files_dir in p.parents and not p.exists()]
            folder.mkdir(parents=True, exist_ok=True)
            with _complete_temp_file(folder, data) as tmp:
                for candidate in _names_like(name):
                    if _link_new(tmp, self.files_dir / candidate):
                        return candidate
        except OSError:
            for new_folder in made:  # innermost first
                _remove_if_empty(new_folder)
            raise

    def versions(self) -> list[Version]:
        found = []
        for path in self.versions_dir.glob("v*.json"):
            if not re.fullmatch(r"v\d+\.json", path.name):
                continue
            try:
                m = read_manifest(path)
            except DataError:
                continue
            found.append(Version(m["version"], path, m["files"], m["fit"], m.get("note", ""), m["created"]))
        return sorted(found, key=lambda v: v.number)

    def latest(self) -> Version | None:
        versions = self.versions()
        return versions[-1] if versions else None

    def save_version(self, files: list[str], fit: str, note: str = "") -> Version:
        """A new version listing `files` (names under files/) with crop mode `fit`."""
        if fit not in FITS:
            raise DataSetError(f"crop mode must be one of {', '.join(FITS)}, not {fit!r}")
        known = set(self.file_names())
        unknown = [f for f in files if f not in known]
        if unknown:
            raise DataSetError(f"{len(unknown)} file(s) are not in data set {self.name}: {unknown[0]}")
        if not files:
            raise DataSetError("a version needs at least one image")
        files, created = sorted(files), time.time()
        with self.lock():
            latest = self.latest()
            number = latest.number + 1 if latest else 1
            self.versions_dir.mkdir(parents=True, exist_ok=True)
            # vN.json is created, never replaced: a writer that missed the lock gets the next N.
            while not _create_json(path := self.versions_dir / f"v{number}.json", {
                    "format": MANIFEST_FORMAT, "version": number, "root": f"../{FILES}", "files": files,
                    "fit": fit, "note": note, "created": created, "dataset": self.name}):
                number += 1
        return Version(number, path, files, fit, note, created)

    def record_import(self, kind: str, detail: str, added: list[str], skipped: list[tuple[str, str]]) -> Version:
        """Log an import in dataset.json (naming its first SKIPS_KEPT skipped files, counting all)
        and write the version that includes its files."""
        with self.lock():
            meta = self.meta
            meta["imports"].append({"time": time.time(), "kind": kind, "detail": detail, "added": len(added),
                                    "skipped": [f"{name}{SKIP_SEPARATOR}{reason}" for name, reason in
                                                skipped[:SKIPS_KEPT]],
                                    "skipped_count": len(skipped)})
            meta["count"] = len(self.file_names())
            atomic.write_json(self.path / "dataset.json", meta)
            latest = self.latest()
            if not added and latest:
                return latest
            files = sorted(set(latest.files if latest else []) | set(added))
            if not files:
                raise DataSetError("nothing was imported: " + (
                    "; ".join(f"{n}: {r}" for n, r in skipped[:3]) if skipped else "no files found"))
            return self.save_version(files, latest.fit if latest else "crop",
                                     note=f"import of {len(added)} from {kind}")

    def skipped_on_import(self) -> list[tuple[str, str]]:
        """(name or URL, reason) of the files imports skipped, oldest import first: at most
        SKIPS_KEPT per import (skipped_on_import_count has them all)."""
        return [_skip_entry(entry) for record in self.meta["imports"] for entry in record["skipped"]]

    def skipped_on_import_count(self) -> int:
        return sum(record.get("skipped_count", len(record["skipped"])) for record in self.meta["imports"])


def _skip_entry(entry: str) -> tuple[str, str]:
    # dataset.json keeps each skip as one "name: reason" string
    name, separator, reason = entry.partition(SKIP_SEPARATOR)
    return (name, reason) if separator else (entry, entry)


# --- files created exclusively ------------------------------------------------------


@contextmanager
def _complete_temp_file(folder: Path, data: bytes) -> Iterator[Path]:
    """A temp file in `folder` holding `data`, flushed to disk; removed afterwards. Its name does
    not derive from the target's, so a long target name fails at the link, not here."""
    fd, tmp = tempfile.mkstemp(prefix=".new-", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        yield Path(tmp)
    finally:
        Path(tmp).unlink(missing_ok=True)


def _create_json(target: Path, obj) -> bool:
    """Write `obj` to `target` complete, only if `target` does not exist yet: False when it does."""
    text = json.dumps(obj, indent=2, sort_keys=True) + "\n"
    with _complete_temp_file(target.parent, text.encode()) as tmp:
        return _link_new(tmp, target)


def _link_new(tmp: Path, target: Path) -> bool:
    """Give `tmp` the name `target` only if that name is free (atomic, like O_EXCL): False when taken."""
    try:
        os.link(tmp, target)
        return True
    except FileExistsError:
        return False


def _names_like(name: str) -> Iterator[str]:
    path = PurePosixPath(name)
    yield name
    n = 1
    while True:
        n += 1
        yield str(path.with_name(f"{path.stem}-{n}{path.suffix}"))


def _remove_if_empty(folder: Path) -> None:
    try:
        folder.rmdir()
    except OSError:
        pass


class DataRegistry:
    """The data sets under one folder."""

    def __init__(self, root: Path | None = None):
        self.root = Path(root) if root else datasets_dir()

    def all(self) -> list[DataSet]:
        if not self.root.is_dir():
            return []
        return [DataSet(p) for p in sorted(self.root.iterdir())
                if p.is_dir() and (p / "dataset.json").is_file()]

    def get(self, name: str) -> DataSet:
        path = self.root / validate_name(name)
        if not (path / "dataset.json").is_file():
            raise DataSetError(f"no data set named {name!r}")
        return DataSet(path)

    def create(self, name: str, source: str) -> DataSet:
        path = self.root / validate_name(name)
        self.root.mkdir(parents=True, exist_ok=True)
        try:
            path.mkdir()  # exclusive: of two tabs creating one name, one is told it exists
        except FileExistsError:
            raise DataSetError(f"a data set named {name!r} already exists: pick another name "
                               "or import into it") from None
        (path / FILES).mkdir()
        atomic.write_json(path / "dataset.json", {"name": path.name, "created": time.time(), "source": source,
                                                  "count": 0, "imports": []})
        return DataSet(path)

    def delete(self, name: str) -> None:
        """Removes the data set's copy of the files; the user's own originals elsewhere stay,
        and so do the runs trained on it (see runs_using)."""
        ds = self.get(name)
        with ds.lock():  # not under an import
            shutil.rmtree(ds.path)


def runs_using(ds: DataSet, runs) -> list:
    """The runs (core.runs.registry.Run) whose training data is one of this data set's versions."""
    root = ds.path.resolve()
    return [r for r in runs if root in Path(str(r.config.get("data", ""))).resolve().parents]
