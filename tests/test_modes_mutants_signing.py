"""What ``modes/_signing.py`` promises, pinned where its mutation run found nothing checking it.

Each test states a behaviour a user or an operator relies on: why a message is refused (the
reason is the label of ``onsale_mode_rejected_total``, the detail is what the log says), the
envelope's wire format that consumers outside Python read, the key files' errors and modes,
and the OpenSSL fallback when PyNaCl cannot be imported. docs/mutation.md lists the mutants.
"""

from __future__ import annotations

import base64
import os
import stat
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import orjson
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from onsale_obs.exceptions import BadInputError, SigningKeyError
from onsale_obs.modes import Entry, ModeState, RejectedMessage, Signer, Verifier, generate_key_pair
from onsale_obs.modes._chain import EMPTY_STATES, Head
from onsale_obs.modes._signing import MAX_MESSAGE_BYTES, claimed_link, peek_head
from onsale_obs.testing import key_pair

STATE = ModeState("event:final", "onsale", 7, 1_800_000_000.0, 1_800_003_600.0, "manual", "go")
HEAD = Head(7, "a" * 64, EMPTY_STATES, 1_800_000_000.0, 30.0)


def envelope(signer: Signer, signed: bytes, /, **changes: object) -> bytes:
    """An envelope of ``signed`` signed by ``signer``, with fields replaced or (None) removed."""
    fields: dict[str, object] = {
        "v": 1,
        "kid": signer.kid,
        "payload": signed.decode(),
        "sig": base64.b64encode(signer.private_key.sign(signed)).decode(),
    }
    for name, value in changes.items():
        if value is None:
            del fields[name]
        else:
            fields[name] = value
    return orjson.dumps(fields)


def state_payload(state: ModeState = STATE) -> bytes:
    return orjson.dumps(state.to_payload(), option=orjson.OPT_SORT_KEYS)


def padded(message: bytes, size: int) -> bytes:
    """The same JSON, padded with trailing whitespace to exactly ``size`` bytes."""
    assert len(message) <= size
    return message + b" " * (size - len(message))


def refusal(open_: Callable[[bytes], object], message: bytes) -> RejectedMessage:
    with pytest.raises(RejectedMessage) as refused:
        open_(message)
    assert str(refused.value) == f"{refused.value.reason}: {refused.value.detail}"
    return refused.value


# every way a message is refused, and what the subscriber's counter and log then say
# (a message is bytes by its type; text here is what a caller that ignores the types passes)
REFUSALS: list[tuple[str, Callable[[Signer], bytes], str, str]] = [
    ("text, not bytes", lambda s: "{}", "malformed", "not bytes but str"),  # type: ignore[list-item,return-value]
    ("a JSON list", lambda s: b"[]", "malformed", "not a signed-state envelope"),
    (
        "a payload that is not text",
        lambda s: envelope(s, state_payload(), payload=5),
        "malformed",
        "not a signed-state envelope",
    ),
    (
        "no signature",
        lambda s: envelope(s, state_payload(), sig=None),
        "unsigned",
        "the envelope carries no signature",
    ),
    (
        "an empty signature",
        lambda s: envelope(s, state_payload(), sig=""),
        "unsigned",
        "the envelope carries no signature",
    ),
    (
        "a signature that is a number",
        lambda s: envelope(s, state_payload(), sig=12345),
        "unsigned",
        "the envelope carries no signature",
    ),
    (
        "a key nobody trusts",
        lambda s: envelope(s, state_payload(), kid="nobody"),
        "forged",
        "signed by unknown key 'nobody'",
    ),
    (
        "a key id that is a list",
        lambda s: envelope(s, state_payload(), kid=["x"]),
        "forged",
        "signed by unknown key ['x']",
    ),
    (
        "a signature with a character outside base64",
        lambda s: envelope(
            s,
            state_payload(),
            sig="!" + base64.b64encode(s.private_key.sign(state_payload())).decode(),
        ),
        "forged",
        "the signature is not base64",
    ),
    (
        "a changed payload",
        lambda s: envelope(
            s, state_payload(), payload=state_payload().decode().replace("go", "no")
        ),
        "forged",
        "signature does not match the payload",
    ),
    (
        "a signed payload that is not JSON",
        lambda s: envelope(s, b"go"),
        "malformed",
        "signed payload is not JSON",
    ),
]


@pytest.mark.parametrize(
    ("build", "reason", "detail"),
    [pytest.param(b, r, d, id=name) for name, b, r, d in REFUSALS],
)
def test_every_refusal_names_its_reason_and_what_was_wrong(
    keys: tuple[Signer, Verifier], build: Callable[[Signer], bytes], reason: str, detail: str
) -> None:
    """A refused state and a refused head give the same reason and detail (the metric's label,
    the log line), and the exception reads ``reason: detail``."""
    signer, verifier = keys
    message = build(signer)
    for open_ in (verifier.open, verifier.open_head):
        refused = refusal(open_, message)
        assert (refused.reason, refused.detail) == (reason, detail)


def test_bytes_that_are_not_json_are_malformed_and_say_so(keys: tuple[Signer, Verifier]) -> None:
    refused = refusal(keys[1].open, b"\x00not json")
    assert refused.reason == "malformed"
    assert refused.detail.startswith("not JSON (")
    assert len(refused.detail) > len("not JSON ()")


def test_a_signed_head_with_a_bad_field_is_malformed_and_named_a_head(
    keys: tuple[Signer, Verifier],
) -> None:
    payload = orjson.dumps({**HEAD.to_payload(), "revision": "seven"}, option=orjson.OPT_SORT_KEYS)
    refused = refusal(keys[1].open_head, envelope(keys[0], payload))
    assert refused.reason == "malformed"
    assert refused.detail.startswith("head: ")
    assert len(refused.detail) > len("head: ")


def test_a_message_of_exactly_the_size_limit_is_read_one_byte_more_is_not(
    keys: tuple[Signer, Verifier],
) -> None:
    signer, verifier = keys
    sealed = signer.seal(STATE)
    assert verifier.open(padded(sealed, MAX_MESSAGE_BYTES)) == STATE
    refused = refusal(verifier.open, padded(sealed, MAX_MESSAGE_BYTES + 1))
    assert refused.reason == "oversized"
    assert refused.detail == f"{MAX_MESSAGE_BYTES + 1} bytes > {MAX_MESSAGE_BYTES}"


def test_a_replay_names_the_revision_it_was_signed_for_and_where_it_was_found(
    keys: tuple[Signer, Verifier],
) -> None:
    message = keys[0].seal(STATE)
    refused = refusal(lambda m: keys[1].open_entry(Entry(9, "event:final", m)), message)
    assert refused.reason == "replayed"
    assert refused.detail == "state of event:final rev 7 re-sent as rev 9"


def test_the_envelope_is_the_documented_wire_format(keys: tuple[Signer, Verifier]) -> None:
    """``{"v": 1, "kid", "payload": canonical JSON (sorted keys, compact), "sig"}``: what a
    consumer in another language parses, and the same state always seals to the same bytes."""
    signer, _ = keys
    chained = ModeState(
        "event:final", "onsale", 8, 1_800_000_060.0, None, "manual", "more", 120.0, 7, "b" * 64
    )
    for state in (STATE, chained):
        sealed = orjson.loads(signer.seal(state))
        assert sorted(sealed) == ["kid", "payload", "sig", "v"]
        assert sealed["v"] == 1
        assert sealed["kid"] == signer.kid
        assert sealed["payload"] == state_payload(state).decode()
        keys_in_order = list(orjson.loads(sealed["payload"]))
        assert keys_in_order == sorted(keys_in_order)
        assert signer.seal(state) == signer.seal(state)
    head = orjson.loads(signer.seal_head(HEAD))
    assert head["payload"] == orjson.dumps(HEAD.to_payload(), option=orjson.OPT_SORT_KEYS).decode()
    assert head["v"] == 1


def test_peeking_at_a_head_reads_it_without_trusting_it() -> None:
    """The subscriber's cheap look at the head: what it says, whoever signed it; None for
    nothing, junk or a message over the size limit."""
    stranger, _ = key_pair()
    sealed = stranger.seal_head(HEAD)
    assert peek_head(sealed) == HEAD
    assert peek_head(padded(sealed, MAX_MESSAGE_BYTES)) == HEAD
    assert peek_head(padded(sealed, MAX_MESSAGE_BYTES + 1)) is None
    assert peek_head(None) is None
    assert peek_head(b"[1, 2]") is None
    assert peek_head(stranger.seal(STATE)) is None


def test_the_claimed_link_is_read_only_when_well_formed() -> None:
    stranger, _ = key_pair()
    chained = ModeState(
        "event:a", "onsale", 8, 1_800_000_060.0, prev_revision=7, prev_digest="b" * 64
    )
    sealed = stranger.seal(chained)
    assert claimed_link(sealed) == (7, "b" * 64)
    assert claimed_link(padded(sealed, MAX_MESSAGE_BYTES)) == (7, "b" * 64)
    assert claimed_link(padded(sealed, MAX_MESSAGE_BYTES + 1)) is None
    assert claimed_link(stranger.seal(STATE)) is None  # not chained
    for prev in ({"revision": 7, "digest": None}, {"revision": "7", "digest": "b" * 64}, [7]):
        payload = orjson.dumps({**chained.to_payload(), "prev": prev})
        assert claimed_link(envelope(stranger, payload)) is None
    assert claimed_link(b'"just a string"') is None


@pytest.fixture
def without_pynacl(monkeypatch: pytest.MonkeyPatch) -> None:
    """``import nacl.signing`` fails, as where PyNaCl is not installed."""
    for name in ("nacl.signing", "nacl.exceptions"):
        monkeypatch.setitem(sys.modules, name, None)


@pytest.mark.usefixtures("without_pynacl")
def test_without_pynacl_openssl_signs_and_verifies_the_same() -> None:
    """The OpenSSL fallback accepts a good signature and refuses a changed one as forged."""
    fallback_signer, fallback_verifier = key_pair()
    sealed = fallback_signer.seal(STATE)
    assert fallback_verifier.open(sealed) == STATE
    other, _ = key_pair()
    forged = envelope(fallback_signer, state_payload(), sig=orjson.loads(other.seal(STATE))["sig"])
    refused = refusal(fallback_verifier.open, forged)
    assert (refused.reason, refused.detail) == ("forged", "signature does not match the payload")
    short = envelope(fallback_signer, state_payload(), sig=base64.b64encode(b"short").decode())
    assert refusal(fallback_verifier.open, short).reason == "forged"


def test_a_verifier_needs_a_key() -> None:
    with pytest.raises(SigningKeyError) as error:
        Verifier([])
    assert str(error.value) == "at least one verify key is required."


@pytest.fixture
def ec_key_files(tmp_path: Path) -> tuple[Path, Path]:
    """An EC (not Ed25519) private and public key, as PEM files with safe modes."""
    private = ec.generate_private_key(ec.SECP256R1())
    private_file, public_file = tmp_path / "ec-private.pem", tmp_path / "ec-public.pem"
    private_file.write_bytes(
        private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    public_file.write_bytes(
        private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    private_file.chmod(0o600)
    public_file.chmod(0o644)
    return private_file, public_file


def test_a_key_of_another_kind_is_named_with_its_file(ec_key_files: tuple[Path, Path]) -> None:
    private_file, public_file = ec_key_files
    private_type = type(
        serialization.load_pem_private_key(private_file.read_bytes(), password=None)
    ).__name__
    public_type = type(serialization.load_pem_public_key(public_file.read_bytes())).__name__
    with pytest.raises(SigningKeyError) as error:
        Signer.from_file(private_file)
    assert str(error.value) == (
        f"{private_file}: holds a {private_type}, expected an Ed25519 private key."
    )
    assert error.value.file == str(private_file)
    with pytest.raises(SigningKeyError) as error:
        Verifier.from_files([public_file])
    assert (
        str(error.value) == f"{public_file}: holds a {public_type}, expected an Ed25519 public key."
    )
    assert error.value.file == str(public_file)


def test_a_verify_key_that_is_not_a_key_or_missing_says_so(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a key")
    with pytest.raises(SigningKeyError) as error:
        Verifier.from_files([garbage])
    assert str(error.value).startswith(f"{garbage}: is not a PEM Ed25519 public key (")
    with pytest.raises(SigningKeyError) as error:
        Verifier.from_files([tmp_path / "nope.pem"])
    assert str(error.value).startswith(f"{tmp_path / 'nope.pem'}: cannot open the verify key (")


def test_a_verify_key_others_can_change_is_refused_as_a_verify_key(tmp_path: Path) -> None:
    files = generate_key_pair(tmp_path)
    files.verify_key.chmod(0o666)
    with pytest.raises(SigningKeyError) as error:
        Verifier.from_files([files.verify_key])
    assert "the verify key can be changed by its group and other users" in str(error.value)
    assert f"chmod 644 {files.verify_key}" in str(error.value)


def test_a_signing_key_file_serves_as_a_verify_key(tmp_path: Path) -> None:
    """Given the private key, a verifier trusts its public half."""
    files = generate_key_pair(tmp_path)
    signer = Signer.from_file(files.signing_key)
    verifier = Verifier.from_files([files.signing_key])
    assert verifier.key_ids == (signer.kid,)
    assert verifier.open(signer.seal(STATE)) == STATE


def test_generated_keys_have_the_documented_names_in_a_new_nested_folder(tmp_path: Path) -> None:
    folder = tmp_path / "deploy" / "keys"
    files = generate_key_pair(folder)
    assert (files.signing_key, files.verify_key) == (
        folder / "onsale-signing.pem",
        folder / "onsale-verify.pem",
    )
    assert Verifier.from_files([files.verify_key]).key_ids == (files.kid,)


def test_generating_over_existing_keys_names_the_key_it_keeps(tmp_path: Path) -> None:
    generate_key_pair(tmp_path)
    with pytest.raises(BadInputError) as error:
        generate_key_pair(tmp_path)
    signing = tmp_path / "onsale-signing.pem"
    assert str(error.value) == (
        f"{signing}: already exists; refusing to overwrite a key (pass --force to replace it)."
    )
    assert error.value.file == str(signing)


def test_a_key_folder_that_is_a_file_is_bad_input_naming_it(tmp_path: Path) -> None:
    not_a_folder = tmp_path / "keys"
    not_a_folder.write_text("")
    with pytest.raises(BadInputError) as error:
        generate_key_pair(not_a_folder)
    assert str(error.value) == (
        f"{not_a_folder}: cannot make the key folder (File exists); expected a folder path."
    )
    assert error.value.file == str(not_a_folder)


@pytest.fixture
def umask_zero() -> Iterator[None]:
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


@pytest.mark.usefixtures("umask_zero")
def test_the_signing_key_is_never_readable_by_others_not_even_before_its_chmod(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With no umask to help, the private key file is created 0600: there is no moment when
    another user could open it. The verify key ends 0644 (anyone reads, only the owner writes)."""
    real_chmod = os.chmod
    seen: dict[str, int] = {}

    def chmod(path: str | os.PathLike[str], mode: int) -> None:
        seen.setdefault(Path(path).name, stat.S_IMODE(os.stat(path).st_mode))
        real_chmod(path, mode)

    monkeypatch.setattr(os, "chmod", chmod)
    files = generate_key_pair(tmp_path)
    assert seen["onsale-signing.pem"] == 0o600
    assert stat.S_IMODE(files.signing_key.stat().st_mode) == 0o600
    assert stat.S_IMODE(files.verify_key.stat().st_mode) == 0o644


def test_the_verify_key_is_0644_whatever_the_umask(tmp_path: Path) -> None:
    old = os.umask(0o077)
    try:
        files = generate_key_pair(tmp_path)
    finally:
        os.umask(old)
    assert stat.S_IMODE(files.verify_key.stat().st_mode) == 0o644
