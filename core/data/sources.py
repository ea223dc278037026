"""The files of a folder or a zip: names, sizes and readers, with the names that are left out.

Hidden files and macOS zip metadata are not part of a data set. A zip with a
name that could escape wherever it is unpacked (absolute, drive letter, ".."),
or with more entries than anyone's images, is refused as a whole, before
anything is read. What the listing already tells against a file (a link out of
its folder, a zip member that would expand like a bomb) is its `skip` reason:
such a file is never read.
"""
import os
import re
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from core.data.images import UnusableImage

MAX_ZIP_ENTRIES = 100_000  # per zip; each one costs a line in the import's report
# Images are compressed already, so a member that shrank over 100x in the zip is a bomb's
# shape; with this cap a zip can't decode to more than 100x its own size.
MAX_COMPRESSION_RATIO = 100
# zipfile decompresses a whole bzip2 or LZMA chunk whatever size the member declares, so only
# for these two methods does the header bound the work. Every common zip tool writes them.
ZIP_METHODS = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED)
CHUNK_BYTES = 2**20


class DataError(Exception):
    """A data set that cannot be loaded; the message is shown to the user as-is."""


@dataclass
class SourceFile:
    name: str  # relative, "/" separated
    size: int  # as listed; reading stops at the cap whatever this says
    read: Callable[[int], bytes]  # read(limit): the content, or its first limit + 1 bytes
    skip: str | None = None  # why the file is left out unread, known from the listing


def read_file(file: SourceFile, limit: int) -> bytes:
    """The file's content; raises UnusableImage with the reason when it cannot be read or holds
    more than `limit` bytes (counted as they are read, not taken from the listing)."""
    try:
        data = file.read(limit)
    except (OSError, EOFError, zipfile.BadZipFile, zlib.error, RuntimeError) as exc:  # RuntimeError: encrypted
        raise UnusableImage(f"cannot read: {exc}") from exc
    if len(data) > limit:
        raise UnusableImage(f"too large (over {limit / 2**20:.0f} MB)")
    return data


def read_path(path: Path, limit: int) -> bytes:
    with open(path, "rb") as f:
        return f.read(limit + 1)


def file_in_memory(name: str, data: bytes) -> SourceFile:
    """An uploaded file."""
    return SourceFile(name, len(data), lambda limit: data[:limit + 1])


def is_ignored_name(name: str) -> bool:
    """Hidden files/folders and macOS zip metadata are not part of the data set."""
    parts = name.split("/")
    return parts[0] == "__MACOSX" or any(part.startswith(".") for part in parts)


def is_unsafe_name(member: str) -> bool:
    """Absolute paths, drive letters and ".." could escape wherever the archive lands."""
    name = member.replace("\\", "/")
    return name.startswith("/") or bool(re.match(r"[A-Za-z]:", name)) or ".." in name.split("/")


def folder_files(root: Path) -> list[SourceFile]:
    """Regular files under `root`; links to folders are not followed, links to files only
    within `root` (one to ~/.ssh/id_rsa named cat.png must not be copied)."""
    files = []
    real_root = root.resolve()
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if not is_ignored_name(d)]
        for filename in filenames:
            path = Path(dirpath) / filename
            # Not a regular file (FIFO, broken link): reading could block or fail.
            if is_ignored_name(filename) or not path.is_file():
                continue
            name = path.relative_to(root).as_posix()
            target = path.resolve()
            skip = None if target.is_relative_to(real_root) else "link to a file outside the folder"
            files.append(SourceFile(name, path.stat().st_size, partial(read_path, target), skip))
    return files


def open_zip(path: Path, source: str) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise DataError(f"{source} is not a valid zip file") from exc


def zip_files(archive: zipfile.ZipFile, source: str) -> list[SourceFile]:
    """Members read in memory; too many entries or a single unsafe name refuse the whole archive."""
    members = archive.infolist()
    if len(members) > MAX_ZIP_ENTRIES:
        raise DataError(f"{source} has {len(members):,} entries, over the {MAX_ZIP_ENTRIES:,} a zip may hold: "
                        "refusing this archive")
    for info in members:
        if is_unsafe_name(info.filename):
            raise DataError(f"unsafe entry '{info.filename}' in {source}: refusing this archive")
    files = []
    for info in members:
        name = _normalise_member(info.filename)
        is_folder = info.filename.replace("\\", "/").endswith("/")
        if name and not is_folder and not is_ignored_name(name):
            files.append(SourceFile(name, info.file_size, partial(_read_member, archive, info), _member_skip(info)))
    return files


def _member_skip(info: zipfile.ZipInfo) -> str | None:
    """Why a member is not worth decompressing, from its header alone."""
    if info.compress_type not in ZIP_METHODS:
        method = zipfile.compressor_names.get(info.compress_type, f"method {info.compress_type}")
        return f"compressed with {method} (only stored or deflated zip members are read)"
    ratio = info.file_size / max(info.compress_size, 1)
    if ratio > MAX_COMPRESSION_RATIO:
        return f"compressed {ratio:,.0f}x in the zip (over {MAX_COMPRESSION_RATIO}x: a zip bomb?)"
    return None


def _read_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, limit: int) -> bytes:
    # In chunks, stopping past the limit: the header's sizes are the archive's word, not a fact.
    data = bytearray()
    with archive.open(info) as member:
        while len(data) <= limit and (chunk := member.read(CHUNK_BYTES)):
            data += chunk
    return bytes(data)


def _normalise_member(member: str) -> str:
    parts = member.replace("\\", "/").split("/")
    return "/".join(part for part in parts if part not in ("", "."))
