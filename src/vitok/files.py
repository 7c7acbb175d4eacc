"""Reading and writing files safely: atomic replace with normal permissions, stale temp-file
cleanup, one-line errors for full, read-only or otherwise unwritable disks, and safetensors
loading that names the file it refuses.

Temp files are hidden and named after their target, ``.<target name>.<random>.tmp``, in the
target's directory, so an interrupted write (kill -9, power loss) leaves nothing under the
target's name and :func:`remove_stale_temp_files` can find the leftovers later.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from torch import Tensor

TEMP_SUFFIX = ".tmp"


class WriteError(OSError):
    """A file could not be written; the message names the path and the operating system's reason."""


def temp_path(target: Path) -> Path:
    """A fresh hidden temp name beside ``target``: ``.<name>.<8 hex>.tmp``."""
    return target.parent / f".{target.name}.{secrets.token_hex(4)}{TEMP_SUFFIX}"


def display_name(value: object) -> str:
    """``str(value)`` as valid Unicode: a file name that is not UTF-8 reaches Python with its odd
    bytes as lone surrogates (PEP 383), which JSON and most terminals cannot show; they become
    ``\\xNN`` escapes (a file ``a\\xffb.jpg`` is shown so)."""
    text = str(value)
    try:
        raw = text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # a surrogate that no undecodable byte made: shown as \\udNNN
        raw = text.encode("utf-8", "backslashreplace")
    return raw.decode("utf-8", "backslashreplace")


def os_reason(err: BaseException) -> str:
    """The operating system's reason behind ``err`` ("No space left on device"): the first
    ``OSError`` in its cause/context chain (torch reports a full disk as a RuntimeError from
    ``inline_container.cc`` with the OSError chained), else ``str(err)``."""
    seen: set[int] = set()
    current: BaseException | None = err
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.strerror:
            return current.strerror
        current = current.__cause__ or current.__context__
    return str(err)


def is_write_failure(err: BaseException) -> bool:
    """True for an OS-level write failure: an ``OSError`` anywhere in the chain (full disk,
    file-size limit, read-only file system, permissions)."""
    seen: set[int] = set()
    current: BaseException | None = err
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError):
            return True
        current = current.__cause__ or current.__context__
    return False


def current_umask() -> int:
    """The process umask (read by setting it and restoring it at once)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write(target: str | Path, write: Callable[[Path], None], fsync: bool = True) -> Path:
    """Write ``target`` through ``write(temp_path)`` then rename it over ``target``.

    The temp file is created like ``open()`` creates files (mode ``0o666 & ~umask``), so the
    result is readable by whoever the umask allows; it is fsynced before the rename (with
    ``fsync``) and removed when ``write`` fails. Raises :class:`WriteError` ("cannot write
    <target>: <OS reason>") when the disk is full, read-only or over a quota.
    """
    target = Path(target)
    tmp = temp_path(target)
    try:
        os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        write(tmp)
        os.chmod(tmp, 0o666 & ~current_umask())  # writers that recreate the file (safetensors: 0600)
        if fsync:
            fd = os.open(tmp, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        os.replace(tmp, target)
    except BaseException as err:
        tmp.unlink(missing_ok=True)
        if isinstance(err, Exception) and is_write_failure(err):
            raise WriteError(f"cannot write {target}: {os_reason(err)}") from err
        raise
    return target


def remove_stale_temp_files(directory: str | Path, depth: int = 1) -> list[Path]:
    """Delete the hidden temp files (``.*.tmp``) that interrupted writes left in ``directory`` and
    its subfolders down to ``depth`` levels; returns what was removed. Call it only where no other
    process is writing (at the start of a run that owns the directory)."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    removed = []
    for path in sorted(directory.glob(f".*{TEMP_SUFFIX}")):
        if path.is_file():
            path.unlink(missing_ok=True)
            removed.append(path)
    if depth > 0:
        for sub in sorted(p for p in directory.iterdir() if p.is_dir() and not p.is_symlink()):
            removed += remove_stale_temp_files(sub, depth - 1)
    return removed


def check_writable(directory: str | Path, what: str) -> Path:
    """Create ``directory`` if needed and prove it writable with a tiny temp file; raises
    :class:`WriteError` "<what> <directory> is not writable: <OS reason>" otherwise."""
    directory = Path(directory)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        probe = temp_path(directory / ".write-check")
        with open(probe, "wb") as f:
            f.write(b"ok")
        probe.unlink()
    except OSError as err:
        raise WriteError(f"{what} {directory} is not writable: {os_reason(err)}") from err
    return directory


def check_output_folder(path: Path, flag: str = "--out") -> None:
    """Fail before any work when ``path`` could not become a writable folder: it is a file, or its
    nearest existing ancestor does not take a file (a probe file is written there and removed).
    One-line ``OSError``; creates nothing."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise WriteError(f"{flag} {path} is a file, not a folder")
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise WriteError(f"{flag} {path} cannot be created: {existing} is a file")
    try:
        check_writable(existing, flag)
    except WriteError as err:
        reason = str(err).split(": ", 1)[-1]
        raise WriteError(f"{flag} {path} cannot be written ({existing}: {reason})") from None


def load_safetensors(path: str | Path) -> dict[str, Tensor]:
    """All tensors of a safetensors file (no code is ever run); ``ValueError`` "<path>: not a
    readable safetensors file (<reason>)" for a missing, truncated or foreign file."""
    from safetensors.torch import load_file

    try:
        return load_file(str(path))
    except Exception as err:  # safetensors raises its own error types for every malformed header
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ValueError(f"{path}: not a readable safetensors file ({reason})") from None


LOCK_NAME = ".vitok-run.lock"


def acquire_run_lock(directory: str | Path) -> Path:
    """Claim ``directory`` for one training run: create ``.vitok-run.lock`` holding ``host pid``.

    A lock left by a process that is gone (same host, pid not running) is taken over, one held by
    this process is kept; any other live one
    raises ``RuntimeError`` naming the directory and the process, so two runs never write the same
    checkpoints. Returns the lock's path (remove it with :func:`release_run_lock`).
    """
    import socket

    lock = Path(directory) / LOCK_NAME
    me = f"{socket.gethostname()} {os.getpid()}"
    for _ in range(2):
        try:
            fd = os.open(lock, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            owner = lock.read_text().strip() if lock.is_file() else ""
            host, _, pid = owner.partition(" ")
            if owner == me:  # this process already holds it (a trainer rebuilt to resume)
                return lock
            if host == socket.gethostname() and pid.isdigit() and not _alive(int(pid)):
                lock.unlink(missing_ok=True)  # stale: its process is gone
                continue
            raise RuntimeError(f"{directory} is in use by another training run ({owner or 'unknown process'}; "
                               f"lock file {lock}): wait for it, or remove the lock if that run is gone") from None
        with os.fdopen(fd, "w") as f:
            f.write(me)
        return lock
    raise RuntimeError(f"cannot claim {directory}: its lock file {lock} keeps reappearing")


def release_run_lock(lock: Path | None) -> None:
    """Remove a lock taken by :func:`acquire_run_lock` (if this process still owns it)."""
    if lock is not None and lock.is_file() and lock.read_text().strip().endswith(f" {os.getpid()}"):
        lock.unlink(missing_ok=True)


def is_fresh_dir(directory: str | Path) -> bool:
    """True when ``directory`` does not exist or is empty (a run started there owns all it holds)."""
    directory = Path(directory)
    return not directory.exists() or (directory.is_dir() and not any(directory.iterdir()))


def undo_fresh_dir(directory: str | Path) -> None:
    """Remove everything in ``directory`` and the folder itself (what a run that failed before its
    first step created there; call only when :func:`is_fresh_dir` was true before it started).
    The cwd and filesystem roots are never removed."""
    import shutil

    directory = Path(directory)
    if directory.is_dir() and directory.resolve() not in (Path.cwd().resolve(), Path(directory.anchor or "/")):
        shutil.rmtree(directory, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
