"""Contract files: which paths under a contracts directory are contracts, and reading one without surprises.

* Every entry named `*.yaml` / `*.yml` that is not a directory is a contract to load: a FIFO, a device, a
  socket, a dangling symlink or a symlink loop with such a name is reported by name (never silently skipped,
  never opened). Directories are walked without following symlinks to directories (as `Path.rglob` does), so
  a link back up the tree cannot trap the walk.
* Only regular files are read (a symlink to one is one), opened non-blocking (a file swapped for a FIFO
  after the check cannot block), and at most `max_bytes` (FLOE_CONTRACT_MAX_BYTES, default 4 MiB): a larger
  file is refused from its size, a file that grows while read is refused after `max_bytes` + 1 bytes.
* The bytes are UTF-8 (a UTF-8 byte order mark is dropped; UTF-16 is read too, told by its byte order mark or,
  as YAML does, by a NUL in the first two bytes); anything else is an error with the line and column of the
  first byte that is not UTF-8.
"""

from __future__ import annotations

import codecs
import errno
import hashlib
import os
import stat
from collections.abc import Iterable, Iterator
from pathlib import Path

from floe_monitoring_defs.config import DEFAULT_CONTRACT_MAX_BYTES
from floe_monitoring_defs.contracts.errors import ContractLoadError, fail

CONTRACT_SUFFIXES = (".yaml", ".yml")
FILE = "<file>"
_CHUNK = 1 << 20


def _is_contract_name(name: str) -> bool:
    return name.endswith(CONTRACT_SUFFIXES)


def _walk(root: Path) -> list[Path]:
    """Entries under `root` named like contracts that are not directories, without following directory symlinks;
    in the order of their path components (as sorting the `Path`s would give)."""
    found: list[str] = []
    pending = [str(root)]
    while pending:
        here = pending.pop()
        try:
            with os.scandir(here) as entries:
                listed = list(entries)
        except OSError:
            continue  # an unreadable directory holds nothing floe can read
        for entry in listed:
            try:
                real_dir = entry.is_dir(follow_symlinks=False)
            except OSError:
                real_dir = False
            if real_dir:
                # A Kubernetes ConfigMap volume holds its files in a `..<timestamp>` directory, linked from the
                # mount's top level: walking it would find every contract twice.
                if not entry.name.startswith(".."):
                    pending.append(entry.path)
                continue
            if not _is_contract_name(entry.name):
                continue
            try:
                linked_dir = entry.is_symlink() and entry.is_dir()
            except OSError:
                linked_dir = False
            if not linked_dir:  # a symlink to a directory is a directory, even when named *.yaml
                found.append(entry.path)
    return [Path(p) for p in sorted(found, key=lambda p: p.split(os.sep))]


def iter_contract_paths(paths: Iterable[Path]) -> Iterator[Path]:
    """Every path to load a contract from: a path given that is not a directory as it is, and under each directory
    every entry named `*.yaml` / `*.yml` that is not a directory (whatever it is: reading says what is wrong)."""
    for p in paths:
        if p.is_dir():
            yield from _walk(p)
        else:
            yield p


def is_regular_file(path: Path) -> bool:
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except (OSError, ValueError):
        return False


def iter_regular_files(paths: Iterable[Path]) -> Iterator[Path]:
    """A path given that is not a directory as it is, and under each directory the contract files that are
    regular files (or symlinks to one): what can be read and fingerprinted without surprises."""
    for p in paths:
        if p.is_dir():
            yield from (f for f in _walk(p) if is_regular_file(f))
        else:
            yield p


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def _os_reason(exc: OSError, path: Path) -> str:
    if exc.errno == errno.ELOOP:
        return "a symbolic link loop"
    if exc.errno == errno.ENOENT and path.is_symlink():
        return "a symbolic link to nothing (dangling)"
    return exc.strerror or type(exc).__name__


def read_bytes(path: Path, max_bytes: int = DEFAULT_CONTRACT_MAX_BYTES) -> bytes:
    """The bytes of a regular file, at most `max_bytes`; ContractLoadError naming the file otherwise."""
    source = str(path)
    limit = f"the limit of {max_bytes:,} bytes (FLOE_CONTRACT_MAX_BYTES)"
    try:
        info = os.stat(path)  # follows symlinks: a link to a regular file is one
    except (OSError, ValueError) as exc:
        reason = _os_reason(exc, path) if isinstance(exc, OSError) else "not a path this machine can open"
        raise fail(source, FILE, f"cannot read: {reason}") from None
    if not stat.S_ISREG(info.st_mode):
        raise fail(source, FILE, f"cannot read: {_kind(info.st_mode)}; contracts are read from regular files only")
    if info.st_size > max_bytes:
        raise fail(source, FILE, f"cannot read: {info.st_size:,} bytes is more than {limit}")
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise fail(source, FILE, f"cannot read: {_os_reason(exc, path)}") from None
    chunks: list[bytes] = []
    try:
        opened = os.fstat(fd)
        if not stat.S_ISREG(opened.st_mode):  # replaced between the two looks
            raise fail(
                source, FILE, f"cannot read: {_kind(opened.st_mode)}; contracts are read from regular files only"
            )
        left = max_bytes + 1
        want = min(left, opened.st_size + 1) or 1  # one read for a file as big as it says (+1 to see the end)
        while left > 0:
            chunk = os.read(fd, min(left, want))
            want = _CHUNK
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
    except OSError as exc:
        raise fail(source, FILE, f"cannot read: {_os_reason(exc, path)}") from None
    finally:
        os.close(fd)
    data = b"".join(chunks)
    if len(data) > max_bytes:
        raise fail(source, FILE, f"cannot read: the file grew past {limit} while it was read")
    return data


def decode(data: bytes, source: str) -> str:
    """The text of a contract file: UTF-8 (a byte order mark dropped) or UTF-16 with its byte order mark."""
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8) :]
    elif data.startswith((codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)):
        raise fail(source, FILE, "not UTF-8 text (a UTF-32 byte order mark): save the file as UTF-8")
    elif data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return _utf16(data, "utf-16", source)
    elif len(data) >= 2 and (data[0] == 0) != (data[1] == 0):  # YAML's detection of UTF-16 without a BOM
        return _utf16(data, "utf-16-be" if data[0] == 0 else "utf-16-le", source)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise fail(
            source,
            f"line {line}, column {column}",
            f"not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start}): save the file as UTF-8",
        ) from None


def _utf16(data: bytes, codec: str, source: str) -> str:
    try:
        return data.decode(codec)
    except UnicodeDecodeError as exc:
        raise fail(
            source, FILE, f"not UTF-8 text, nor UTF-16 (byte {exc.start} is not): save the file as UTF-8"
        ) from None


def read_text(path: Path, max_bytes: int = DEFAULT_CONTRACT_MAX_BYTES) -> str:
    return decode(read_bytes(path, max_bytes), str(path))


def fingerprint(path: Path, max_bytes: int = DEFAULT_CONTRACT_MAX_BYTES) -> str:
    """A short digest of a contract file's bytes, read the same bounded way; what is wrong when it cannot be read
    (a file that changes between two looks changes its fingerprint either way)."""
    try:
        return hashlib.sha256(read_bytes(path, max_bytes)).hexdigest()[:16]
    except ContractLoadError as exc:
        return f"unreadable: {exc.error.message}"[:200]
