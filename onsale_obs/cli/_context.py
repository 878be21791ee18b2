"""What the commands open from their options: the mode store, the signing and verify keys."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import typer

from onsale_obs.cli._options import SIGNING_KEY_ENV, VERIFY_KEY_ENV, plain_message, split_paths
from onsale_obs.exceptions import BadInputError, SigningKeyError
from onsale_obs.modes import (
    ModeBackend,
    Signer,
    Verifier,
    open_backend,
)


@contextmanager
def opened_backend(url: str) -> Iterator[ModeBackend]:
    """Open the mode store named by ``--backend`` and close it when the command ends."""
    try:
        backend = open_backend(url)
    except BadInputError as exc:
        raise typer.BadParameter(plain_message(exc), param_hint="'--backend'") from None
    try:
        yield backend
    finally:
        backend.close()


def load_signer(signing_key: str | None) -> Signer:
    """The signer of ``--signing-key``; its absence is bad input (exit 2)."""
    if not signing_key:
        raise SigningKeyError(
            f"changing a mode needs the signing key; pass --signing-key PATH or set "
            f"{SIGNING_KEY_ENV} (make a pair with 'onsale-obs keys generate')."
        )
    return Signer.from_file(signing_key)


def load_verifier(verify_key: str | None, signing_key: str | None) -> Verifier:
    """Trust the ``--verify-key`` list, else the public half of ``--signing-key``."""
    paths: list[str | os.PathLike[str]] = list(split_paths(verify_key))
    if not paths and signing_key:
        paths = [signing_key]
    if not paths:
        raise SigningKeyError(
            f"reading modes needs a key to verify them; pass --verify-key PATH or set "
            f"{VERIFY_KEY_ENV} (or give --signing-key, whose public half is used)."
        )
    return Verifier.from_files(paths)


def optional_verifier(verify_key: str | None) -> Verifier | None:
    """The ``--verify-key`` list for a publisher, or None to trust only its own key."""
    paths: list[str | os.PathLike[str]] = list(split_paths(verify_key))
    return Verifier.from_files(paths) if paths else None
