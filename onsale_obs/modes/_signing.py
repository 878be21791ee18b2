"""Ed25519 signing of mode states, so only holders of the private key can change a mode.

A message on the bus is a small JSON envelope::

    {"v": 1, "kid": "<key id>", "payload": "<canonical state JSON>", "sig": "<base64 signature>"}

The signature covers the exact payload bytes (including the store-assigned revision), so a
state cannot be altered or re-numbered without the private key.
"""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, TypeAlias

import orjson
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from onsale_obs.exceptions import BadInputError, SigningKeyError
from onsale_obs.modes._backend import Entry
from onsale_obs.modes._chain import Head
from onsale_obs.modes._keyfile import read_key_file
from onsale_obs.modes._model import ModeState

#: A signed state is a few hundred bytes; anything far larger is refused before parsing.
MAX_MESSAGE_BYTES = 4096

RejectReason: TypeAlias = Literal[
    "malformed", "oversized", "unsigned", "forged", "replayed", "expired", "unvouched"
]
#: ``unvouched``: a log entry that no signed head covers (written without the key, beyond the
#: history the publishers signed for): skipped without being parsed.
REJECT_REASONS: tuple[RejectReason, ...] = (
    "malformed",
    "oversized",
    "unsigned",
    "forged",
    "replayed",
    "expired",
    "unvouched",
)


class RejectedMessage(Exception):
    """A message from the bus that a subscriber must not believe."""

    def __init__(self, reason: RejectReason, detail: str) -> None:
        self.reason = reason
        self.detail = detail
        super().__init__(f"{reason}: {detail}")


def key_id(public_key: Ed25519PublicKey) -> str:
    """A short, stable id of a public key (first 8 bytes of its SHA-256, hex)."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


@dataclass(frozen=True)
class Signer:
    """Signs mode states with an Ed25519 private key."""

    private_key: Ed25519PrivateKey
    _sign: Callable[[bytes], bytes] = field(init=False, repr=False, compare=False)
    _kid: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # frozen: set once here, so sealing (on every mode change) does no key work
        object.__setattr__(self, "_sign", _fast_sign(self.private_key))
        object.__setattr__(self, "_kid", key_id(self.private_key.public_key()))

    @property
    def kid(self) -> str:
        """The id of the matching public key."""
        return self._kid

    def seal(self, state: ModeState) -> bytes:
        """Return the signed envelope for ``state``, ready for the bus."""
        return self._envelope(state.to_payload())

    def seal_head(self, head: Head) -> bytes:
        """Return the signed envelope of a head (see ``_chain.py``)."""
        return self._envelope(head.to_payload())

    def _envelope(self, fields: dict[str, object]) -> bytes:
        payload = orjson.dumps(fields, option=orjson.OPT_SORT_KEYS)
        return orjson.dumps(
            {
                "v": 1,
                "kid": self._kid,
                "payload": payload.decode(),
                "sig": base64.b64encode(self._sign(payload)).decode(),
            }
        )

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> Signer:
        """Load a PEM (PKCS#8) Ed25519 private key."""
        data = read_key_file(path, "signing")
        try:
            key = serialization.load_pem_private_key(data, password=None)
        except (ValueError, TypeError) as exc:
            raise SigningKeyError(
                f"is not a PEM Ed25519 private key ({exc}); make one with 'onsale-obs keys generate'.",
                file=str(path),
            ) from None
        if not isinstance(key, Ed25519PrivateKey):
            raise SigningKeyError(
                f"holds a {type(key).__name__}, expected an Ed25519 private key.", file=str(path)
            )
        return cls(key)


class Verifier:
    """Checks envelopes against one or more trusted Ed25519 public keys (several during rotation)."""

    def __init__(self, public_keys: list[Ed25519PublicKey]) -> None:
        if not public_keys:
            raise SigningKeyError("at least one verify key is required.")
        self._keys = {key_id(k): _fast_verify(k) for k in public_keys}

    def also_trusting(self, public_key: Ed25519PublicKey) -> Verifier:
        """A verifier that trusts this one's keys and ``public_key``."""
        merged = Verifier([public_key])
        merged._keys = {**self._keys, **merged._keys}
        return merged

    @property
    def key_ids(self) -> tuple[str, ...]:
        """Ids of the trusted keys."""
        return tuple(self._keys)

    def trusts_signer(self, message: bytes) -> bool:
        """True when ``message`` names a key this verifier holds (its signature is not checked)."""
        return self.trusts_key(claimed_kid(message))

    def trusts_key(self, kid: str | None) -> bool:
        """True when ``kid`` is the id of a key this verifier holds."""
        return kid in self._keys

    def open(self, message: bytes) -> ModeState:
        """Verify and decode one message, raising ``RejectedMessage`` with a reason if it fails."""
        payload = self._verified_payload(message)
        try:
            return ModeState.from_payload(orjson.loads(payload))
        except orjson.JSONDecodeError:
            raise RejectedMessage("malformed", "signed payload is not JSON") from None
        except BadInputError as exc:
            raise RejectedMessage("malformed", str(exc)) from None

    def open_head(self, message: bytes) -> Head:
        """Verify and decode a signed head, raising ``RejectedMessage`` if it fails."""
        payload = self._verified_payload(message)
        try:
            return Head.from_payload(orjson.loads(payload))
        except orjson.JSONDecodeError:
            raise RejectedMessage("malformed", "signed payload is not JSON") from None
        except BadInputError as exc:
            raise RejectedMessage("malformed", f"head: {exc}") from None

    def _verified_payload(self, message: bytes) -> bytes:
        if not isinstance(message, bytes):
            raise RejectedMessage("malformed", f"not bytes but {type(message).__name__}")
        if len(message) > MAX_MESSAGE_BYTES:
            raise RejectedMessage("oversized", f"{len(message)} bytes > {MAX_MESSAGE_BYTES}")
        try:
            envelope = orjson.loads(message)
        except orjson.JSONDecodeError as exc:
            raise RejectedMessage("malformed", f"not JSON ({exc})") from None
        if not isinstance(envelope, dict) or not isinstance(envelope.get("payload"), str):
            raise RejectedMessage("malformed", "not a signed-state envelope")
        sig_text = envelope.get("sig")
        kid = envelope.get("kid")
        if not sig_text or not isinstance(sig_text, str):
            raise RejectedMessage("unsigned", "the envelope carries no signature")
        verify = self._keys.get(kid) if isinstance(kid, str) else None
        if verify is None:
            raise RejectedMessage("forged", f"signed by unknown key {kid!r}")
        try:
            payload: bytes = envelope["payload"].encode()
        except UnicodeEncodeError:
            raise RejectedMessage("malformed", "the payload is not UTF-8") from None
        try:
            sig = base64.b64decode(sig_text, validate=True)
        except ValueError:
            raise RejectedMessage("forged", "the signature is not base64") from None
        if not verify(sig, payload):
            raise RejectedMessage("forged", "signature does not match the payload")
        return payload

    def open_entry(self, entry: Entry) -> ModeState:
        """``open`` a log entry, and check it is the state the store placed there.

        A valid old message copied to a new position (another scope, another revision) is
        rejected as ``replayed``.
        """
        state = self.open(entry.message)
        if state.scope != entry.scope or state.revision != entry.revision:
            raise RejectedMessage(
                "replayed",
                f"state of {state.scope} rev {state.revision} re-sent as rev {entry.revision}",
            )
        return state

    @classmethod
    def from_files(cls, paths: list[str | os.PathLike[str]]) -> Verifier:
        """Load PEM Ed25519 public keys (or private keys, whose public half is used)."""
        keys: list[Ed25519PublicKey] = []
        for path in paths:
            data = read_key_file(path, "verify")
            try:
                loaded = serialization.load_pem_public_key(data)
            except (ValueError, TypeError):
                try:
                    private = serialization.load_pem_private_key(data, password=None)
                except (ValueError, TypeError) as exc:
                    raise SigningKeyError(
                        f"is not a PEM Ed25519 public key ({exc}).", file=str(path)
                    ) from None
                loaded = private.public_key()  # type: ignore[assignment,unused-ignore]
            if not isinstance(loaded, Ed25519PublicKey):
                raise SigningKeyError(
                    f"holds a {type(loaded).__name__}, expected an Ed25519 public key.",
                    file=str(path),
                )
            keys.append(loaded)
        return cls(keys)


def claimed_kid(message: bytes | None) -> str | None:
    """The key id an envelope names, WITHOUT checking its signature (None: it names none)."""
    if not isinstance(message, bytes) or len(message) > MAX_MESSAGE_BYTES:
        return None
    try:
        envelope = orjson.loads(message)
    except orjson.JSONDecodeError:
        return None
    kid = envelope.get("kid") if isinstance(envelope, dict) else None
    return kid if isinstance(kid, str) else None


def peek_payload(message: bytes) -> object:
    """An envelope's decoded payload, WITHOUT checking its signature (None: none decodes)."""
    if not isinstance(message, bytes) or len(message) > MAX_MESSAGE_BYTES:
        return None
    try:
        envelope = orjson.loads(message)
        return orjson.loads(envelope["payload"]) if isinstance(envelope, dict) else None
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return None


def peek_head(message: bytes | None) -> Head | None:
    """What a head says, WITHOUT checking its signature (None if it does not parse).

    Only for deciding cheaply what to verify next; never for believing anything.
    """
    if message is None:
        return None
    try:
        return Head.from_payload(peek_payload(message))
    except BadInputError:
        return None


def claimed_link(message: bytes) -> tuple[int, str] | None:
    """The (revision, digest) a state says it follows, WITHOUT checking its signature."""
    payload = peek_payload(message)
    prev = payload.get("prev") if isinstance(payload, dict) else None
    if isinstance(prev, dict):
        revision, digest = prev.get("revision"), prev.get("digest")
        if isinstance(revision, int) and isinstance(digest, str):
            return revision, digest
    return None


def _fast_sign(private_key: Ed25519PrivateKey) -> Callable[[bytes], bytes]:
    """A sign function for one key: libsodium (PyNaCl) when installed, else OpenSSL.

    Both give the same signature (Ed25519 is deterministic); libsodium takes about 19 us where
    OpenSSL through ``cryptography`` takes about 29, on the publisher's path of every change.
    """
    try:
        from nacl.signing import SigningKey
    except ImportError:
        return private_key.sign
    seed = private_key.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    key = SigningKey(seed)

    def sign_sodium(payload: bytes) -> bytes:
        return key.sign(payload).signature

    return sign_sodium


def _fast_verify(public_key: Ed25519PublicKey) -> Callable[[bytes, bytes], bool]:
    """A verify function for one key: libsodium (PyNaCl) when installed, else OpenSSL.

    Verification is a subscriber's main cost per mode change, paid in every service process at
    once; libsodium does it in about 40 us where OpenSSL through ``cryptography`` takes about 70.
    """
    try:
        from nacl.exceptions import BadSignatureError
        from nacl.signing import VerifyKey
    except ImportError:

        def verify_openssl(sig: bytes, payload: bytes) -> bool:
            try:
                public_key.verify(sig, payload)
            except (InvalidSignature, ValueError):
                return False
            return True

        return verify_openssl
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    key = VerifyKey(raw)

    def verify_sodium(sig: bytes, payload: bytes) -> bool:
        try:
            key.verify(payload, sig)
        except (BadSignatureError, ValueError, TypeError):
            return False
        return True

    return verify_sodium


@dataclass(frozen=True)
class KeyPairFiles:
    """Where ``generate_key_pair`` wrote the keys."""

    signing_key: Path
    verify_key: Path
    kid: str


def generate_key_pair(
    directory: Path, *, name: str = "onsale", overwrite: bool = False
) -> KeyPairFiles:
    """Write a new Ed25519 pair: ``<name>-signing.pem`` (mode 0600) and ``<name>-verify.pem``."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:  # a file of that name, or no permission
        raise BadInputError(
            f"cannot make the key folder ({exc.strerror or exc}); expected a folder path.",
            file=str(directory),
        ) from None
    signing = directory / f"{name}-signing.pem"
    verify = directory / f"{name}-verify.pem"
    if not overwrite:
        for path in (signing, verify):
            if path.exists():
                raise BadInputError(
                    "already exists; refusing to overwrite a key (pass --force to replace it).",
                    file=str(path),
                )
    private = Ed25519PrivateKey.generate()
    private_pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    public_pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    fd = os.open(signing, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(private_pem)
    os.chmod(signing, 0o600)
    verify.write_bytes(public_pem)
    os.chmod(verify, 0o644)  # whatever the umask: readers refuse a key others can replace
    return KeyPairFiles(signing, verify, key_id(private.public_key()))
