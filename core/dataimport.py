"""Bring images into a registered data set: a folder, a zip, uploaded files or a URL list.

Files are copied byte for byte into the set's files/ folder; the user's own
originals are never touched. Each file is decoded once on the way in (its facts
go to the scan cache), and files that can't be used are skipped with a reason,
never fatal: non-images, undecodable or truncated files, tiny images, files over
the size cap, decompression bombs. A zip with an absolute or `..` entry is
refused as a whole before anything is written.
"""
import io
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from . import atomic, curate, urlimport
from .data import DataError, SourceFile, early_skip_reason, folder_files, is_ignored_name, zip_files
from .datasets import DataSet, DataSetError, Version

MAX_IMPORT_BYTES = 4 * 2**30  # per import: a runaway folder or list must not fill the disk
Progress = Callable[[int, int], None]


@dataclass
class ImportResult:
    added: list[str]                  # names under files/
    skipped: list[tuple[str, str]]    # (name or URL, reason)
    version: Version                  # the version that now includes the added files


def import_folder(ds: DataSet, folder: Path | str, progress: Progress | None = None) -> ImportResult:
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise DataSetError(f"folder not found: {folder}")
    if folder.resolve() == ds.files_dir.resolve() or ds.files_dir.resolve() in folder.resolve().parents:
        raise DataSetError("that folder is inside the data set itself")
    return _import(ds, folder_files(folder), "folder", str(folder), progress)


def import_zip(ds: DataSet, data: bytes, label: str, progress: Progress | None = None) -> ImportResult:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile as exc:
        raise DataSetError(f"{label} is not a valid zip file") from exc
    with archive:
        try:
            files = zip_files(archive, label)
        except DataError as exc:  # an unsafe entry: nothing is written
            raise DataSetError(str(exc)) from exc
        return _import(ds, files, "zip", label, progress)


def import_uploads(ds: DataSet, uploads: list[tuple[str, bytes]], progress: Progress | None = None) -> ImportResult:
    """Uploaded image files (a .zip among them is imported as a zip)."""
    zips = [(name, data) for name, data in uploads if name.lower().endswith(".zip")]
    images = [SourceFile(PurePosixPath(name.replace("\\", "/")).name, len(data), lambda data=data: data)
              for name, data in uploads if not name.lower().endswith(".zip")]
    result = _import(ds, images, "upload", f"{len(images)} uploaded files", progress) if images else None
    for name, data in zips:
        more = import_zip(ds, data, name, progress)
        result = more if result is None else ImportResult(result.added + more.added,
                                                          result.skipped + more.skipped, more.version)
    if result is None:
        raise DataSetError("nothing was uploaded")
    return result


def import_urls(ds: DataSet, urls: list[str], progress: Progress | None = None, **download_options) -> ImportResult:
    """Download into files/ (names from the URL's hash, so a second run skips what it has)."""
    results = urlimport.download_urls(urls, ds.files_dir, progress=progress, **download_options)
    infos = curate.load_scan(ds)
    latest = ds.latest()
    in_a_version = set(latest.files) if latest else set()
    added, skipped = [], []
    for r in results:
        # "skipped" = on disk from an earlier run; one that was interrupted never recorded it
        if r.status == "ok" or (r.status == "skipped" and r.file not in in_a_version and r.file not in added):
            infos[r.file] = curate.inspect(r.file, (ds.files_dir / r.file).read_bytes())
            if infos[r.file].ok:
                added.append(r.file)
            else:
                skipped.append((r.url, infos[r.file].error))
        elif r.status == "failed":
            skipped.append((r.url, r.reason))
    curate.save_scan(ds, infos)
    return ImportResult(added, skipped, ds.record_import("urls", f"{len(urls)} URLs", added, skipped))


def _import(ds: DataSet, files: Iterable[SourceFile], kind: str, detail: str,
            progress: Progress | None) -> ImportResult:
    files = sorted((f for f in files if not is_ignored_name(f.name)), key=lambda f: f.name)
    infos = curate.load_scan(ds)
    added, skipped, total = [], [], 0
    for i, file in enumerate(files):
        reason = early_skip_reason(file)
        if reason is None and total + file.size > MAX_IMPORT_BYTES:
            reason = f"import size cap reached ({MAX_IMPORT_BYTES / 2**30:.0f} GB)"
        if reason is None:
            try:
                data = file.read()
            except (OSError, zipfile.BadZipFile, RuntimeError) as exc:
                data, reason = None, f"cannot read: {exc}"
        if reason is None:
            info = curate.inspect(file.name, data)
            if not info.ok:
                reason = info.error
            elif file.name in infos and infos[file.name].sha256 == info.sha256:
                reason = "already imported"  # the same import run again; other copies are for curation
        if reason is None:
            name = _free_name(ds, file.name)
            atomic.write_bytes(ds.files_dir / name, data)
            info.name = name
            infos[name] = info
            added.append(name)
            total += file.size
        else:
            skipped.append((file.name, reason))
        if progress:
            progress(i + 1, len(files))
    curate.save_scan(ds, infos)
    return ImportResult(added, skipped, ds.record_import(kind, detail, added, skipped))


def _free_name(ds: DataSet, name: str) -> str:
    """`name`, or name-2, name-3... when another file already has it."""
    path = PurePosixPath(name)
    candidate, n = name, 1
    while (ds.files_dir / candidate).exists():
        n += 1
        candidate = str(path.with_name(f"{path.stem}-{n}{path.suffix}"))
    return candidate
