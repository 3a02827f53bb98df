"""Reading untrusted files with a bound: regular files only, size checked before and while reading.

A FIFO, a device or a socket is refused before any read (opening uses ``O_NONBLOCK``, so even a
FIFO with no writer does not block), the size reported by ``fstat`` is checked first, and the
read itself stops one byte past the limit, so a file that grows while it is read (or a ``/proc``
file that reports size 0) still costs at most the limit in memory.
"""

from __future__ import annotations

import os
import stat

__all__ = ["FileProblem", "read_bounded", "read_head"]

_CHUNK = 1 << 16


class FileProblem(OSError):
    """A file that cannot be read: ``code`` is ``CP100`` (cannot read) or ``CP104`` (too large);
    ``reason`` says why in a few words (``not a regular file (a pipe, device or socket)``).

    Internal to reading: ``check_file``, ``include:`` and the scenario runner turn it into a
    diagnostic or a failure, so it is not in :mod:`carepath.errors` (callers see an ``OSError``).
    """

    def __init__(self, code: str, reason: str) -> None:
        self.code = code
        self.reason = reason
        super().__init__(self.message)

    @property
    def message(self) -> str:
        """The diagnostic's message for the file itself."""
        return self.reason if self.code == "CP104" else f"cannot read file: {self.reason}"


def read_bounded(path: str | os.PathLike[str], max_bytes: int) -> bytes:
    """The bytes of the regular file at ``path``; raises :class:`FileProblem` when it is not a
    regular file, cannot be opened, or holds more than ``max_bytes``."""
    return _read(path, max_bytes, whole=True)


def read_head(path: str | os.PathLike[str], n: int) -> bytes:
    """At most the first ``n`` bytes of the regular file at ``path`` (a FIFO or device raises
    :class:`FileProblem` instead of blocking)."""
    return _read(path, n, whole=False)


def _read(path: str | os.PathLike[str], max_bytes: int, *, whole: bool) -> bytes:
    name = os.fspath(path)
    if "\0" in name:
        raise FileProblem("CP100", "the path contains a NUL character")
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(name, flags)
    except OSError as exc:
        raise FileProblem("CP100", str(exc.strerror or exc)) from None
    except ValueError as exc:  # e.g. a path the platform cannot represent
        raise FileProblem("CP100", str(exc)) from None
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise FileProblem("CP100", "it is a folder")
        if not stat.S_ISREG(st.st_mode):
            raise FileProblem("CP100", "not a regular file (a pipe, device or socket)")
        if whole and st.st_size > max_bytes:
            raise FileProblem("CP104", f"file is {st.st_size:,} bytes; the limit is {max_bytes:,}")
        chunks: list[bytes] = []
        total = 0
        want = max_bytes + 1 if whole else max_bytes  # one byte more tells "too large"
        while total < want:
            try:
                chunk = os.read(fd, min(_CHUNK, want - total))
            except OSError as exc:
                raise FileProblem("CP100", str(exc.strerror or exc)) from None
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
        if total > max_bytes:
            raise FileProblem("CP104", f"file is larger than the limit of {max_bytes:,} bytes")
        return b"".join(chunks)
    finally:
        os.close(fd)
