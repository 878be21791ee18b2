"""Reading key files safely: bounded, never blocking, refusing keys that others can change.

Choices, and why:

- The file is opened non-blocking and ``fstat``-ed through the open descriptor (no check-then-open
  race): a FIFO would block ``open`` and ``read`` for ever, a device like ``/dev/zero`` would be read
  until memory runs out. Only a regular file of at most :data:`MAX_KEY_BYTES` is read.
- Symlinks are followed (Kubernetes mounts secrets as symlinks); the checks apply to the file they
  lead to. The folders on the way are not checked: whoever can write them can swap the file.
- A key writable by group or others is refused, for both roles. A signing key someone else can
  overwrite turns every change into one the services reject; a verify key someone else can
  overwrite is worse: it is the trust anchor, so replacing it lets them sign modes themselves.
- A signing key readable by group or others is read, with a warning that names the ``chmod``:
  containers often mount secrets ``0644`` for a single-user process, and refusing those would
  break working deployments. A verify key is public: anyone may read it.
"""

from __future__ import annotations

import errno
import os
import shlex
import stat
from typing import Final, Literal

from onsale_obs.exceptions import SigningKeyError
from onsale_obs.modes._log import modes_logger

#: A PEM Ed25519 key is under 200 bytes; a file far larger than that is not a key.
MAX_KEY_BYTES: Final = 16 * 1024

# O_NONBLOCK: open a FIFO without waiting for a writer; O_NOCTTY: a terminal path must not
# become our controlling terminal. Both are absent on Windows, where neither risk exists.
_OPEN_FLAGS: Final = (
    os.O_RDONLY
    | getattr(os, "O_NONBLOCK", 0)
    | getattr(os, "O_NOCTTY", 0)
    | getattr(os, "O_CLOEXEC", 0)
    | getattr(os, "O_BINARY", 0)
)
_WRITABLE_BY_OTHERS: Final = stat.S_IWGRP | stat.S_IWOTH
_READABLE_BY_OTHERS: Final = stat.S_IRGRP | stat.S_IROTH
#: The mode each role should have, for the ``chmod`` a refusal suggests.
_FIX_MODE: Final = {"signing": "600", "verify": "644"}
_WRITERS: Final = {
    stat.S_IWGRP: "its group",
    stat.S_IWOTH: "other users",
    stat.S_IWGRP | stat.S_IWOTH: "its group and other users",
}


def read_key_file(path: str | os.PathLike[str], role: Literal["signing", "verify"]) -> bytes:
    """Return the bytes of a key file, or raise ``SigningKeyError`` saying what was expected.

    ``role`` is ``"signing"`` for a private key, ``"verify"`` for a public one.
    """
    name = os.fspath(path)
    try:
        fd = os.open(name, _OPEN_FLAGS)
    except OSError as exc:
        raise SigningKeyError(_open_failure(name, role, exc), file=name) from None
    try:
        info = os.fstat(fd)
        _check(info, name, role)
        data = _read_at_most(fd, MAX_KEY_BYTES + 1)
    except OSError as exc:
        raise SigningKeyError(
            f"cannot read the {role} key ({exc.strerror or exc}).", file=name
        ) from None
    finally:
        os.close(fd)
    if len(data) > MAX_KEY_BYTES:  # it grew after fstat, or fstat did not know its size
        raise SigningKeyError(_too_large(role, f"over {MAX_KEY_BYTES} bytes"), file=name)
    return data


def _check(info: os.stat_result, name: str, role: Literal["signing", "verify"]) -> None:
    if not stat.S_ISREG(info.st_mode):
        raise SigningKeyError(
            f"is {_kind(info.st_mode)}, not a regular file; expected the {role} key as a PEM "
            "file (as 'onsale-obs keys generate' writes it).",
            file=name,
        )
    if info.st_size > MAX_KEY_BYTES:
        raise SigningKeyError(_too_large(role, f"{info.st_size} bytes"), file=name)
    if info.st_mode & _WRITABLE_BY_OTHERS:
        who = _WRITERS[info.st_mode & _WRITABLE_BY_OTHERS]
        raise SigningKeyError(
            f"the {role} key can be changed by {who} (mode {_mode(info)}), so it cannot be "
            f"trusted; let only its owner write it: chmod {_FIX_MODE[role]} {shlex.quote(name)}",
            file=name,
        )
    if role == "signing" and info.st_mode & _READABLE_BY_OTHERS:
        modes_logger().warning(
            "the signing key can be read by other users, who could sign mode changes",
            file=name,
            mode=_mode(info),
            fix=f"chmod 600 {shlex.quote(name)}",
        )


def _read_at_most(fd: int, limit: int) -> bytes:
    pieces: list[bytes] = []
    size = 0
    while size < limit:
        piece = os.read(fd, limit - size)
        if not piece:
            break
        pieces.append(piece)
        size += len(piece)
    return b"".join(pieces)


def _open_failure(name: str, role: str, exc: OSError) -> str:
    if exc.errno == errno.ENXIO:  # a socket, or a device with no driver behind it
        try:
            kind = _kind(os.stat(name).st_mode)
        except OSError:
            kind = "not a file"
        return f"is {kind}, not a regular file; expected the {role} key as a PEM file."
    return f"cannot open the {role} key ({exc.strerror or exc}); expected a readable PEM file."


def _too_large(role: str, size: str) -> str:
    return (
        f"is {size}, larger than a {role} key can be ({MAX_KEY_BYTES} bytes at most; a PEM "
        "Ed25519 key is under 200); expected the PEM file of the key."
    )


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


def _mode(info: os.stat_result) -> str:
    return f"{stat.S_IMODE(info.st_mode):04o}"
