"""Key files are read bounded and without blocking, and keys that others can change are refused."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from structlog.testing import capture_logs

from onsale_obs.exceptions import SigningKeyError
from onsale_obs.modes._keyfile import MAX_KEY_BYTES, read_key_file


@pytest.fixture
def signing_pem() -> bytes:
    """A fresh PEM (PKCS#8) Ed25519 private key."""
    return Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _write(path: Path, data: bytes, mode: int) -> Path:
    path.write_bytes(data)
    os.chmod(path, mode)  # explicit: the test's umask must not decide
    return path


def test_owner_only_signing_key_is_read_whole(tmp_path: Path, signing_pem: bytes) -> None:
    """A 0600 signing key comes back byte for byte, with no warning (the positive control)."""
    key = _write(tmp_path / "signing.pem", signing_pem, 0o600)
    with capture_logs() as logs:
        data = read_key_file(key, "signing")
    assert data == signing_pem
    assert serialization.load_pem_private_key(data, password=None) is not None
    assert logs == []


def test_key_of_exactly_the_limit_is_read(tmp_path: Path) -> None:
    """The limit is inclusive: a file of MAX_KEY_BYTES bytes is read in full."""
    key = _write(tmp_path / "big.pem", b"k" * MAX_KEY_BYTES, 0o600)
    assert read_key_file(key, "signing") == b"k" * MAX_KEY_BYTES


@pytest.mark.timeout(10)
def test_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    """A FIFO with no writer is refused at once (a plain open would wait for a writer for ever)."""
    fifo = tmp_path / "signing.pem"
    os.mkfifo(fifo, 0o600)
    with pytest.raises(SigningKeyError) as info:
        read_key_file(fifo, "signing")
    assert info.value.file == str(fifo)
    assert "is a FIFO (named pipe), not a regular file" in str(info.value)
    assert "expected the signing key as a PEM file" in str(info.value)


@pytest.mark.timeout(10)
def test_fifo_with_a_writer_is_not_read(tmp_path: Path) -> None:
    """A FIFO someone writes into is refused too, before a byte of it is consumed."""
    fifo = tmp_path / "verify.pem"
    os.mkfifo(fifo, 0o600)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)  # lets the writer open without waiting
    writer = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
    try:
        os.write(writer, b"-----BEGIN PUBLIC KEY-----\n")
        with pytest.raises(SigningKeyError, match="is a FIFO"):
            read_key_file(fifo, "verify")
        assert os.read(reader, 100) == b"-----BEGIN PUBLIC KEY-----\n"
    finally:
        os.close(writer)
        os.close(reader)


@pytest.mark.timeout(10)
def test_dev_zero_is_refused_without_reading_it() -> None:
    """/dev/zero is a character device: refused, not read until memory runs out."""
    with pytest.raises(SigningKeyError) as info:
        read_key_file("/dev/zero", "verify")
    assert info.value.file == "/dev/zero"
    assert "is a character device, not a regular file" in str(info.value)


def test_directory_is_refused(tmp_path: Path) -> None:
    """A folder passed as the key says it is a folder and what was expected instead."""
    with pytest.raises(SigningKeyError) as info:
        read_key_file(tmp_path, "signing")
    assert "is a directory, not a regular file; expected the signing key" in str(info.value)


def test_socket_is_refused(tmp_path: Path) -> None:
    """A Unix socket (which cannot be opened as a file) is named as a socket."""
    path = tmp_path / "k.sock"
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(str(path))
        with pytest.raises(SigningKeyError, match="is a socket, not a regular file"):
            read_key_file(path, "verify")


def test_oversized_file_is_refused(tmp_path: Path, signing_pem: bytes) -> None:
    """A file over the limit is refused with its size, even when it starts with a valid key."""
    key = _write(tmp_path / "signing.pem", signing_pem + b"\n" * MAX_KEY_BYTES, 0o600)
    with pytest.raises(SigningKeyError) as info:
        read_key_file(key, "signing")
    assert f"is {len(signing_pem) + MAX_KEY_BYTES} bytes, larger than" in str(info.value)


@pytest.mark.parametrize(
    ("mode", "who"),
    [
        pytest.param(0o602, "other users", id="0602"),
        pytest.param(0o620, "its group", id="0620"),
        pytest.param(0o666, "its group and other users", id="0666"),
    ],
)
def test_signing_key_writable_by_others_is_refused_with_the_chmod(
    tmp_path: Path, signing_pem: bytes, mode: int, who: str
) -> None:
    """A signing key others can overwrite is refused, and the message gives the chmod to run."""
    key = _write(tmp_path / "signing.pem", signing_pem, mode)
    with pytest.raises(SigningKeyError) as info:
        read_key_file(key, "signing")
    message = str(info.value)
    assert f"can be changed by {who} (mode {mode:04o})" in message
    assert message.endswith(f"chmod 600 {key}")


def test_verify_key_writable_by_others_is_refused(tmp_path: Path) -> None:
    """A world-writable verify key is refused: whoever replaces the trust anchor can sign modes."""
    public = Ed25519PrivateKey.generate().public_key()
    pem = public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    key = _write(tmp_path / "verify.pem", pem, 0o646)
    with pytest.raises(SigningKeyError) as info:
        read_key_file(key, "verify")
    assert str(info.value).endswith(f"chmod 644 {key}")


def test_world_readable_verify_key_is_read_quietly(tmp_path: Path) -> None:
    """A public key may be readable by anyone: no refusal, no warning."""
    key = _write(tmp_path / "verify.pem", b"public", 0o644)
    with capture_logs() as logs:
        assert read_key_file(key, "verify") == b"public"
    assert logs == []


def test_signing_key_readable_by_others_is_read_with_a_warning(
    tmp_path: Path, signing_pem: bytes
) -> None:
    """A 0644 signing key is read (containers mount secrets so) but logged with the chmod."""
    key = _write(tmp_path / "signing.pem", signing_pem, 0o644)
    with capture_logs() as logs:
        assert read_key_file(key, "signing") == signing_pem
    assert len(logs) == 1
    assert logs[0]["log_level"] == "warning"
    assert logs[0]["fix"] == f"chmod 600 {key}"
    assert logs[0]["mode"] == "0644"


def test_symlink_is_followed_and_its_target_checked(tmp_path: Path, signing_pem: bytes) -> None:
    """Through a symlink the target's mode counts: a writable target is refused."""
    target = _write(tmp_path / "target.pem", signing_pem, 0o666)
    link = tmp_path / "signing.pem"
    link.symlink_to(target)
    with pytest.raises(SigningKeyError, match="can be changed by its group and other users"):
        read_key_file(link, "signing")
    os.chmod(target, 0o600)
    assert read_key_file(link, "signing") == signing_pem


def test_chmod_in_the_message_is_quoted_for_the_shell(tmp_path: Path, signing_pem: bytes) -> None:
    """A path with a space is quoted, so the suggested command can be pasted as it is."""
    key = _write(tmp_path / "my key.pem", signing_pem, 0o660)
    with pytest.raises(SigningKeyError) as info:
        read_key_file(key, "signing")
    assert str(info.value).endswith(f"chmod 600 '{key}'")


def test_missing_file_says_what_was_expected(tmp_path: Path) -> None:
    """A missing key is a SigningKeyError naming the file, the reason and what was expected."""
    path = tmp_path / "nope.pem"
    with pytest.raises(SigningKeyError) as info:
        read_key_file(str(path), "verify")
    assert info.value.file == str(path)
    assert str(info.value) == (
        f"{path}: cannot open the verify key (No such file or directory); "
        "expected a readable PEM file."
    )


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_unreadable_file_is_a_signing_key_error(tmp_path: Path) -> None:
    """A key without read permission is a SigningKeyError, not a PermissionError traceback."""
    key = _write(tmp_path / "signing.pem", b"x", 0)
    with pytest.raises(SigningKeyError, match=r"cannot open the signing key \(Permission denied\)"):
        read_key_file(key, "signing")
