"""Signed envelopes: only the private key's holder can make a state subscribers accept."""

from __future__ import annotations

import base64
from pathlib import Path

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from onsale_obs.exceptions import BadInputError, SigningKeyError
from onsale_obs.modes import (
    ModeState,
    RejectedMessage,
    Signer,
    Verifier,
    generate_key_pair,
)
from onsale_obs.testing import key_pair

STATE = ModeState("event:final", "onsale", 7, 1_800_000_000.0, 1_800_003_600.0, "manual", "go")


def test_round_trip(keys: tuple[Signer, Verifier]) -> None:
    """A sealed state opens to the identical state."""
    signer, verifier = keys
    assert verifier.open(signer.seal(STATE)) == STATE


def test_signature_is_plain_ed25519(keys: tuple[Signer, Verifier]) -> None:
    """Another Ed25519 implementation (OpenSSL here) verifies what the signer (libsodium) made.

    Consumers outside Python check the envelope with whatever Ed25519 library they have.
    """
    signer, _ = keys
    envelope = orjson.loads(signer.seal(STATE))
    public_key = signer.private_key.public_key()
    public_key.verify(base64.b64decode(envelope["sig"]), envelope["payload"].encode())
    assert envelope["kid"] == signer.kid


def test_wrong_key_is_forged(keys: tuple[Signer, Verifier]) -> None:
    """A state signed by a key the subscriber does not trust is rejected as forged."""
    other_signer, _ = key_pair()
    with pytest.raises(RejectedMessage) as info:
        keys[1].open(other_signer.seal(STATE))
    assert info.value.reason == "forged"


def test_tampered_payload_is_forged(keys: tuple[Signer, Verifier]) -> None:
    """Changing any signed field (here: the revision) breaks the signature."""
    envelope = orjson.loads(keys[0].seal(STATE))
    envelope["payload"] = envelope["payload"].replace('"revision":7', '"revision":99')
    with pytest.raises(RejectedMessage) as info:
        keys[1].open(orjson.dumps(envelope))
    assert info.value.reason == "forged"


def test_unsigned_is_rejected(keys: tuple[Signer, Verifier]) -> None:
    """An envelope without a signature is rejected as unsigned."""
    envelope = orjson.loads(keys[0].seal(STATE))
    del envelope["sig"]
    with pytest.raises(RejectedMessage) as info:
        keys[1].open(orjson.dumps(envelope))
    assert info.value.reason == "unsigned"


def test_oversized_message_is_rejected_before_parsing(keys: tuple[Signer, Verifier]) -> None:
    """A huge message is refused by size, without being parsed."""
    with pytest.raises(RejectedMessage) as info:
        keys[1].open(b"{" + b" " * 10_000 + b"}")
    assert info.value.reason == "oversized"


def test_signed_but_invalid_payload_is_malformed(keys: tuple[Signer, Verifier]) -> None:
    """Even a correctly signed payload is rejected if a field is invalid (unknown mode)."""
    signer, verifier = keys
    payload = orjson.dumps({**STATE.to_payload(), "mode": "panic"}, option=orjson.OPT_SORT_KEYS)
    envelope = {
        "v": 1,
        "kid": signer.kid,
        "payload": payload.decode(),
        "sig": base64.b64encode(signer.private_key.sign(payload)).decode(),
    }
    with pytest.raises(RejectedMessage) as info:
        verifier.open(orjson.dumps(envelope))
    assert info.value.reason == "malformed"
    assert "panic" in info.value.detail


@given(st.binary(max_size=600))
def test_random_bytes_never_crash(data: bytes) -> None:
    """Random bytes on the bus are rejected with a reason; nothing else escapes."""
    _, verifier = key_pair()
    with pytest.raises(RejectedMessage) as info:
        verifier.open(data)
    assert info.value.reason in {"malformed", "oversized", "unsigned", "forged"}


@given(
    st.dictionaries(
        st.text(max_size=8), st.none() | st.integers(-(2**63), 2**63 - 1) | st.text(max_size=20)
    )
)
def test_random_envelopes_never_crash(envelope: dict[str, object]) -> None:
    """Arbitrary JSON objects are rejected with a reason, never an unexpected exception."""
    _, verifier = key_pair()
    with pytest.raises(RejectedMessage):
        verifier.open(orjson.dumps(envelope))


def test_generate_key_pair_files(tmp_path: Path) -> None:
    """Generated keys load back, the private key is private, and overwriting needs force."""
    files = generate_key_pair(tmp_path / "keys")
    assert files.signing_key.stat().st_mode & 0o777 == 0o600
    signer = Signer.from_file(files.signing_key)
    verifier = Verifier.from_files([files.verify_key])
    assert verifier.open(signer.seal(STATE)) == STATE
    assert signer.kid == files.kid
    with pytest.raises(BadInputError, match="refusing to overwrite"):
        generate_key_pair(tmp_path / "keys")
    assert generate_key_pair(tmp_path / "keys", overwrite=True).kid != files.kid


def test_bad_key_files_name_the_file(tmp_path: Path) -> None:
    """Unreadable or wrong key files raise a clear error naming the file."""
    missing = tmp_path / "nope.pem"
    with pytest.raises(SigningKeyError, match=r"nope\.pem: cannot open the signing key"):
        Signer.from_file(missing)
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a key")
    with pytest.raises(SigningKeyError, match=r"garbage\.pem: is not a PEM"):
        Signer.from_file(garbage)
    with pytest.raises(SigningKeyError, match=r"garbage\.pem"):
        Verifier.from_files([garbage])


def test_verifier_accepts_rotated_keys() -> None:
    """During rotation a subscriber trusts both the old and the new key."""
    old_signer, _ = key_pair()
    new_signer, _ = key_pair()
    both = Verifier([old_signer.private_key.public_key(), new_signer.private_key.public_key()])
    assert both.open(old_signer.seal(STATE)) == STATE
    assert both.open(new_signer.seal(STATE)) == STATE
    assert len(both.key_ids) == 2
