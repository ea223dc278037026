"""Bring images into a registered data set: a folder, a zip, uploaded files or a URL list.

Files are copied byte for byte into the set's files/ folder; the user's own
originals are never touched. Each file is decoded once on the way in (its facts
go to the scan cache), and files that can't be used are skipped with a reason,
never fatal: non-images, undecodable or truncated files, tiny images, files over
the size cap, decompression bombs, names the disk refuses. A zip with an absolute
or `..` entry, or with too many entries, is refused as a whole before anything is
written. An import holds the data set's lock from start to end.
"""
import io
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from core.data import curate, urlimport
from core.data.curate import FileInfo
from core.data.datasets import DataRegistry, DataSet, DataSetError, Version
from core.data.images import UnusableImage
from core.data.imageset import early_skip_reason, read_image_file
from core.data.sources import DataError, SourceFile, file_in_memory, folder_files, is_ignored_name, zip_files

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
    images = [file_in_memory(PurePosixPath(name.replace("\\", "/")).name, data)
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
    """Download into files/ (names from the URL's hash, so a second run skips what it has).
    `download_options` go to urlimport.download_urls (tests allow their local server there)."""
    with ds.lock():
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


IMPORTS = {"folder": import_folder, "upload": import_uploads, "urls": import_urls}


def import_new(registry: DataRegistry, name: str, kind: str, payload, progress: Progress | None = None) -> ImportResult:
    """Create data set `name` with its first import (kind: folder | upload | urls). If that
    import fails or brings no usable image, nothing is left behind: a retry with the right
    folder must not be told that the name already exists."""
    ds = registry.create(name, kind)
    try:
        return IMPORTS[kind](ds, payload, progress)
    except BaseException:
        registry.delete(ds.name)
        raise


def _import(ds: DataSet, files: Iterable[SourceFile], kind: str, detail: str,
            progress: Progress | None) -> ImportResult:
    files = sorted((f for f in files if not is_ignored_name(f.name)), key=lambda f: f.name)
    with ds.lock():
        infos = curate.load_scan(ds)
        versioned = {name for version in ds.versions() for name in version.files}
        # Copied in by an import that was stopped before it wrote its version: the next one adopts them.
        strays = {info.sha256: name for name, info in infos.items() if name not in versioned and info.ok}
        added, skipped, total = [], [], 0
        try:
            for i, file in enumerate(files):
                try:
                    info = _copy_in(ds, file, infos, versioned, strays, total)
                    infos[info.name] = info
                    added.append(info.name)
                    total += info.bytes
                except UnusableImage as exc:
                    skipped.append((file.name, str(exc)))
                if progress:
                    progress(i + 1, len(files))
        finally:  # also when stopped half-way: every file copied in has its scan entry
            curate.save_scan(ds, infos)
        return ImportResult(added, skipped, ds.record_import(kind, detail, added, skipped))


def _copy_in(ds: DataSet, file: SourceFile, infos: dict[str, FileInfo], versioned: set[str],
             strays: dict[str, str], total: int) -> FileInfo:
    """Check one file and copy it into the data set under a free name; raises UnusableImage with
    the reason it is skipped."""
    if early_skip_reason(file) is None and total + file.size > MAX_IMPORT_BYTES:
        raise UnusableImage(f"import size cap reached ({MAX_IMPORT_BYTES / 2**30:.0f} GB)")
    data = read_image_file(file)
    info = curate.inspect(file.name, data)
    if not info.ok:
        raise UnusableImage(info.error)
    known = infos.get(file.name)
    if known and known.sha256 == info.sha256 and file.name in versioned:
        raise UnusableImage("already imported")  # the same import run again; other copies are for curation
    if info.sha256 in strays:
        return infos[strays.pop(info.sha256)]
    try:
        info.name = ds.add_file(file.name, data)
    except OSError as exc:
        raise UnusableImage(f"cannot save: {exc.strerror or exc}") from exc
    return info
