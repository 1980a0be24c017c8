"""The files of one log segment: their names and suffixes, renames and removal.

A segment's three files are named by its base offset, zero-padded to 20 digits,
with a suffix while they are not the live segment's (``.deleted`` awaiting
removal, the cleaner's ``.cleaned`` copies)::

    00000000000000000000.log        00000000000000000000.log.deleted
    00000000000000000000.index      00000000000000000000.index.deleted
    00000000000000000000.timeindex  00000000000000000000.timeindex.deleted

Renames keep the files open: slices in flight (:class:`FileSlice`, a region of a
.log file for sendfile or pread) read on through their fds.
:class:`SegmentFiles` is the base of :class:`strom.storage.segment.LogSegment`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import ClassVar, Final

from strom.common.values import Value
from strom.storage.index import OffsetIndex, TimeIndex
from strom.storage.logfile import LogFile

LOG_SUFFIX: Final = ".log"
INDEX_SUFFIX: Final = ".index"
TIME_INDEX_SUFFIX: Final = ".timeindex"


def filename_prefix(base_offset: int) -> str:
    return f"{base_offset:020d}"


def _with_suffix(path: Path, old: str, new: str) -> Path:
    name = path.name[: len(path.name) - len(old)] if old else path.name
    return path.with_name(name + new)


class FileSlice(Value):
    """A region of a segment file, for os.sendfile(fileno) or :meth:`read`."""

    __slots__ = ("file", "length", "position")
    FIELDS: ClassVar[tuple[str, ...]] = ("file", "position", "length")
    file: Final[LogFile]
    position: Final[int]
    length: Final[int]

    def __init__(self, file: LogFile, position: int, length: int) -> None:
        self.file = file
        self.position = position
        self.length = length

    @property
    def fileno(self) -> int:
        return self.file.fileno

    def read(self) -> bytes:
        """The bytes of the slice (shorter if the file was truncated meanwhile)."""
        chunks: list[bytes] = []
        done = 0
        while done < self.length:
            chunk = os.pread(self.file.fileno, self.length - done, self.position + done)
            if not chunk:
                break
            chunks.append(chunk)
            done += len(chunk)
        return b"".join(chunks)


class SegmentFiles:
    """A segment's .log file and indexes on disk; the host class (LogSegment) sets
    them up."""

    log_path: Path
    file: LogFile
    offset_index: OffsetIndex
    time_index: TimeIndex
    suffix: str

    @property
    def index_path(self) -> Path:
        return self.offset_index.path

    @property
    def time_index_path(self) -> Path:
        return self.time_index.path

    def change_suffix(self, suffix: str) -> None:
        """Rename the three files from this segment's suffix to ``suffix`` (Kafka's
        changeFileSuffixes, e.g. to ``.deleted``). Open fds follow the files."""
        if suffix == self.suffix:
            return
        new_log = _with_suffix(self.log_path, self.suffix, suffix)
        if self.log_path.exists():
            os.replace(self.log_path, new_log)
        self.log_path = self.file.path = new_log
        for index in (self.offset_index, self.time_index):
            if index.path.exists():
                index.rename(_with_suffix(index.path, self.suffix, suffix))
        self.suffix = suffix

    def take_names_of(self, old: SegmentFiles, old_suffix: str) -> None:
        """Put this segment (written under another suffix, same base offset) in place
        of ``old``, crash-safely: ``old``'s indexes get ``old_suffix``, then this
        .log replaces ``old``'s in one rename (``old``'s fd keeps the replaced file
        readable for slices in flight), then this segment's indexes take their names.
        A crash in between leaves a .log without indexes (rebuilt at load) and
        leftover suffixed files (deleted at load), never a .log with foreign indexes."""
        for index in (old.offset_index, old.time_index):
            index.rename(_with_suffix(index.path, old.suffix, old_suffix))
        os.replace(self.log_path, old.log_path)
        self.log_path = self.file.path = old.log_path
        old.log_path = old.file.path = _with_suffix(old.log_path, old.suffix, old_suffix)
        old.suffix = old_suffix
        for index in (self.offset_index, self.time_index):
            index.rename(_with_suffix(index.path, self.suffix, ""))
        self.suffix = ""

    def delete(self) -> None:
        """Unlink the files without closing the .log fd.

        The fd closes when the segment and the last FileSlice on it are
        dropped, so in-flight reads never see a reused descriptor.
        """
        self.offset_index.delete()
        self.time_index.delete()
        self.log_path.unlink(missing_ok=True)
