"""Registered data sets: imported files that are never modified, and curated versions.

    data/sets/<name>/          (GANSCOPE_DATASETS overrides data/sets)
      dataset.json             name, created, count, one entry per import
      files/                   the imported files as they came (first-level subfolders = classes)
      versions/v<N>.json       a version: which files, which crop mode; a training source (--data)
      scan.json                per-file facts for the report (a cache, see core.curate)

Curation never deletes or edits a file: it writes a new version that lists fewer
files. Every import writes a version too (the previous one plus the new files),
so the latest version is always what the user last saw.
"""
import json
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from . import atomic
from .data import FITS, MANIFEST_FORMAT, DataError, read_manifest
from .paths import datasets_dir

NAME_RULE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
FILES = "files"
VERSIONS = "versions"


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
        latest = self.latest()
        number = latest.number + 1 if latest else 1
        path = self.versions_dir / f"v{number}.json"
        created = time.time()
        atomic.write_json(path, {"format": MANIFEST_FORMAT, "version": number, "root": f"../{FILES}",
                                 "files": sorted(files), "fit": fit, "note": note, "created": created,
                                 "dataset": self.name})
        return Version(number, path, sorted(files), fit, note, created)

    def record_import(self, kind: str, detail: str, added: list[str], skipped: list[tuple[str, str]]) -> Version:
        """Log an import in dataset.json and write the version that includes its files."""
        meta = self.meta
        meta["imports"].append({"time": time.time(), "kind": kind, "detail": detail, "added": len(added),
                                "skipped": [f"{name}: {reason}" for name, reason in skipped]})
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
        if path.exists():
            raise DataSetError(f"a data set named {name!r} already exists: pick another name or import into it")
        (path / FILES).mkdir(parents=True)
        atomic.write_json(path / "dataset.json", {"name": path.name, "created": time.time(), "source": source,
                                                  "count": 0, "imports": []})
        return DataSet(path)

    def get_or_create(self, name: str, source: str) -> DataSet:
        try:
            return self.get(name)
        except DataSetError:
            return self.create(name, source)

    def delete(self, name: str) -> None:
        """Removes the data set's copy of the files; the user's own originals elsewhere stay."""
        shutil.rmtree(self.get(name).path)
