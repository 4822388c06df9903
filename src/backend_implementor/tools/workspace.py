"""Confinement of every path argument to the workspace, and the file primitives the tools share.

One function, `resolve_in_workspace`, checks every path a tool receives. Paths are taken literally:
no `~` expansion, no URL decoding, no environment variables. Symlinks are resolved (also in parent
directories and dangling ones) and the result must stay inside the workspace, so a link the agent made
with bash (`ln -s /etc x`) cannot be used to read or write outside.

The check alone would race: a process the model started can swap a checked directory for a symlink before
the file is opened. So every open, create and rename then walks the checked, symlink-free path one
component at a time from a handle on the workspace, each directory opened with O_NOFOLLOW, and works on the
last one through its directory handle: a symlink that appears in between makes the call fail, never escape.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import secrets
import stat
from pathlib import Path

from backend_implementor.tools.base import ToolContext, ToolError

MAX_FILE_BYTES = 10 * 1024 * 1024  # read/edit refuse larger files: the model should use bash (head, sed)
MAX_NAME_BYTES = 255  # NAME_MAX on Linux filesystems
MAX_PATH_BYTES = 4096  # PATH_MAX
_BINARY_SNIFF = 8192

# Permission bits for new files, as the umask allows (mkstemp would create them 0600). Read once at
# import: os.umask can only be read by setting it, which is not thread-safe later on.
_UMASK = os.umask(0o022)
os.umask(_UMASK)

Fingerprint = tuple[int, int, str]


def resolve_in_workspace(ctx: ToolContext, path: object, *, must_exist: bool = False) -> Path:
    """Return the absolute, symlink-free path of `path` inside `ctx.workspace`, or raise ToolError.

    Relative paths are relative to the workspace; absolute paths are accepted only when inside it.
    `must_exist` requires an existing regular file (the read/edit case). Otherwise the path must not
    be a directory and no existing component of its parents may be a file (the write case).
    """
    if not isinstance(path, str):
        raise ToolError("path must be a string")
    if path == "" or path.strip() == "":
        raise ToolError("path is empty; give a file path relative to the workspace, e.g. src/index.ts")
    if "\x00" in path:
        raise ToolError("path contains a NUL byte")
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in path):
        raise ToolError(f"path {path!r} contains control characters (newline, tab, ...)")
    if "\\" in path:
        raise ToolError(f"path {path!r} contains a backslash; use forward slashes (this is a POSIX system)")
    try:
        encoded = path.encode("utf-8")
    except UnicodeEncodeError:
        raise ToolError(f"path {path!r} is not valid UTF-8") from None
    if len(encoded) > MAX_PATH_BYTES:
        raise ToolError(f"path is too long ({len(encoded)} bytes; the limit is {MAX_PATH_BYTES})")
    for part in path.split("/"):
        if len(part.encode("utf-8")) > MAX_NAME_BYTES:
            raise ToolError(
                f"a path component is too long ({len(part.encode())} bytes; limit {MAX_NAME_BYTES})"
            )

    workspace = ctx.workspace
    candidate = Path(path)
    joined = candidate if candidate.is_absolute() else workspace / candidate
    try:
        # realpath follows every symlink that exists, dangling ones included, and folds `..`.
        resolved = Path(os.path.realpath(joined))
    except (OSError, ValueError) as exc:
        raise ToolError(f"cannot resolve path {path!r}: {exc}") from None
    if resolved != workspace and workspace not in resolved.parents:
        if candidate.is_absolute() and not _lexically_inside(joined, workspace):
            raise ToolError(
                f"path {path!r} is outside the workspace ({workspace}); use a path relative to the workspace"
            )
        if ".." in candidate.parts and not _lexically_inside(joined, workspace):
            raise ToolError(f"path {path!r} escapes the workspace with '..'; stay inside {workspace}")
        raise ToolError(f"path {path!r} goes through a symlink that points outside the workspace")
    if resolved == workspace:
        raise ToolError(f"path {path!r} is the workspace directory itself; give a file path")

    try:
        st = resolved.stat()
    except FileNotFoundError:
        st = None
    except NotADirectoryError:
        raise ToolError(f"path {path!r}: a parent of it is a file, not a directory") from None
    except OSError as exc:
        raise ToolError(f"cannot access {path!r}: {exc.strerror}") from None

    if st is None:
        if must_exist:
            raise ToolError(f"file not found: {path}{_nearby_hint(resolved, workspace)}")
        _check_parents_are_dirs(resolved, workspace, path)
        return resolved
    if stat.S_ISDIR(st.st_mode):
        raise ToolError(f"{path} is a directory, not a file (list it with bash, e.g. `ls {path}`)")
    if not stat.S_ISREG(st.st_mode):
        # A FIFO would block read_file forever; devices and sockets are never source files.
        raise ToolError(f"{path} is not a regular file (FIFO, socket or device)")
    return resolved


def _lexically_inside(path: Path, workspace: Path) -> bool:
    normal = Path(os.path.normpath(path))
    return normal == workspace or workspace in normal.parents


def _check_parents_are_dirs(resolved: Path, workspace: Path, original: str) -> None:
    for parent in resolved.parents:
        if parent == workspace or workspace not in parent.parents:
            return
        if parent.exists() and not parent.is_dir():
            rel = parent.relative_to(workspace)
            raise ToolError(f"path {original!r}: {rel} is a file, not a directory")


def _nearby_hint(resolved: Path, workspace: Path) -> str:
    """Name a few files in the nearest existing directory, so the model can fix a typo."""
    directory = resolved.parent
    while directory != workspace and not directory.is_dir():
        directory = directory.parent
    try:
        names = sorted(p.name + ("/" if p.is_dir() else "") for p in directory.iterdir())
    except OSError:
        return ""
    names = [n for n in names if n not in (".git/", "node_modules/")]
    if not names:
        return ""
    where = "the workspace root" if directory == workspace else str(directory.relative_to(workspace)) + "/"
    shown = ", ".join(names[:15]) + (f", ... ({len(names) - 15} more)" if len(names) > 15 else "")
    return f" ({where} contains: {shown})"


def display(ctx: ToolContext, resolved: Path) -> str:
    """The path as the model should see it: relative to the workspace."""
    return str(resolved.relative_to(ctx.workspace))


def fingerprint_bytes(data: bytes, st: os.stat_result) -> Fingerprint:
    return (st.st_mtime_ns, st.st_size, hashlib.sha256(data).hexdigest())


def read_text(ctx: ToolContext, resolved: Path) -> tuple[str, Fingerprint]:
    """Read a workspace file as UTF-8 text, refusing huge, binary and non-UTF-8 files."""
    rel = display(ctx, resolved)
    fd = open_beneath(ctx, resolved, os.O_RDONLY | os.O_NONBLOCK)
    with os.fdopen(fd, "rb") as fh:
        st = os.fstat(fh.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise ToolError(f"{rel} is not a regular file")
        if st.st_size > MAX_FILE_BYTES:
            raise ToolError(
                f"{rel} is too large ({st.st_size:,} bytes; the limit is {MAX_FILE_BYTES:,}); "
                f"inspect it with bash (head, tail, grep, sed -n 'A,Bp')"
            )
        data = fh.read(MAX_FILE_BYTES + 1)
    if len(data) > MAX_FILE_BYTES:
        raise ToolError(f"{rel} is too large (it grew while being read); inspect it with bash")
    if b"\x00" in data[:_BINARY_SNIFF]:
        raise ToolError(f"{rel} looks binary (it contains NUL bytes); it cannot be shown or edited as text")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ToolError(
            f"{rel} is not valid UTF-8 (bad byte at offset {exc.start}); it cannot be shown or edited as text"
        ) from None
    return text, fingerprint_bytes(data, st)


def _dir_beneath(ctx: ToolContext, parts: tuple[str, ...], rel: str, *, create: bool) -> int:
    """A handle on workspace/parts, reached one component at a time without following any symlink."""
    fd = os.open(ctx.workspace, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for part in parts:
            flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
            try:
                child = os.open(part, flags, dir_fd=fd)
            except FileNotFoundError:
                if not create:
                    raise
                with contextlib.suppress(FileExistsError):  # made meanwhile: opened (or refused) below
                    os.mkdir(part, dir_fd=fd)
                child = os.open(part, flags, dir_fd=fd)
            os.close(fd)
            fd = child
    except OSError as exc:
        os.close(fd)
        raise _beneath_error(exc, rel) from None
    return fd


def _beneath_error(exc: OSError, rel: str) -> ToolError:
    if exc.errno in (errno.ELOOP, errno.ENOTDIR, errno.EMLINK):
        return ToolError(
            f"{rel} changed while it was being opened: a part of its path is now a symlink or a file "
            f"(nothing was read or written outside the workspace)"
        )
    if isinstance(exc, FileNotFoundError):
        return ToolError(f"file not found: {rel} (it was removed while being opened)")
    return ToolError(f"cannot open {rel}: {exc.strerror or exc}")


def exists_beneath(ctx: ToolContext, resolved: Path) -> bool:
    parts = resolved.relative_to(ctx.workspace).parts
    try:
        dfd = _dir_beneath(ctx, parts[:-1], display(ctx, resolved), create=False)
    except ToolError:
        return False
    try:
        os.stat(parts[-1], dir_fd=dfd, follow_symlinks=False)
        return True
    except OSError:
        return False
    finally:
        os.close(dfd)


def open_beneath(ctx: ToolContext, resolved: Path, flags: int) -> int:
    """Open a file at a checked path; fails instead of following a symlink swapped in since the check."""
    rel = display(ctx, resolved)
    parts = resolved.relative_to(ctx.workspace).parts
    dfd = _dir_beneath(ctx, parts[:-1], rel, create=False)
    try:
        return os.open(parts[-1], flags | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dfd)
    except OSError as exc:
        raise _beneath_error(exc, rel) from None
    finally:
        os.close(dfd)


def atomic_write(ctx: ToolContext, resolved: Path, text: str) -> Fingerprint:
    """Write `text` to `resolved` via a temporary file in the same directory and os.replace.

    Readers never see a half-written file, and on any error the old file is untouched and the
    temporary file is removed. An existing file keeps its permission bits (e.g. an executable script).
    """
    rel = display(ctx, resolved)
    try:
        data = text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ToolError(
            f"content for {rel} cannot be encoded as UTF-8 ({exc.reason} at {exc.start})"
        ) from None
    parts = resolved.relative_to(ctx.workspace).parts
    dfd = _dir_beneath(ctx, parts[:-1], rel, create=True)
    name = parts[-1]
    tmp = f".{name[:100]}.{secrets.token_hex(4)}.bimpl-tmp"
    try:
        try:
            mode = stat.S_IMODE(os.stat(name, dir_fd=dfd, follow_symlinks=False).st_mode)
        except FileNotFoundError:
            mode = 0o666 & ~_UMASK
        # The temporary file and the rename go through the directory handle: a symlink swapped in for
        # the directory meanwhile cannot redirect them (and renaming onto a symlink replaces the link).
        fd = os.open(
            tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=dfd
        )
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fchmod(fh.fileno(), mode)
                st = os.fstat(fh.fileno())
            os.replace(tmp, name, src_dir_fd=dfd, dst_dir_fd=dfd)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp, dir_fd=dfd)
            raise
    except OSError as exc:
        raise ToolError(f"cannot write {rel}: {exc.strerror or exc}") from None
    finally:
        os.close(dfd)
    return fingerprint_bytes(data, st)
