"""What the commands open from their options: the mode store, the signing and verify keys."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from onsale_obs.cli._options import SIGNING_KEY_ENV, VERIFY_KEY_ENV, plain_message, split_paths
from onsale_obs.exceptions import BadInputError, SigningKeyError
from onsale_obs.redact import redact_text, redact_url

if TYPE_CHECKING:
    from onsale_obs.modes import ModeBackend, Signer, Verifier

# The store and key classes are imported where they are used: they load cryptography, asyncio
# and the backends, which a command's --help (and commands that open no store) never need.


@contextmanager
def opened_backend(url: str, *, reading: bool = False) -> Iterator[ModeBackend]:
    """Open the mode store named by ``--backend`` and close it when the command ends.

    ``reading``: the command only reads, so a sqlite file that does not exist is a mistyped
    path, not an empty store (opening it would create it and report "everything is normal").
    """
    from onsale_obs.modes import SqliteBackend, open_backend

    try:
        backend = open_backend(url)
    except BadInputError as exc:
        raise typer.BadParameter(
            redact_text(plain_message(exc), url), param_hint="'--backend'"
        ) from None
    if reading and isinstance(backend, SqliteBackend) and not _exists(backend.path):
        raise typer.BadParameter(
            f"{redact_url(url)}: there is no mode store at {backend.path!r} (nothing was ever published "
            "there). Check the path, or publish first with 'onsale-obs mode set'.",
            param_hint="'--backend'",
        )
    try:
        yield backend
    finally:
        backend.close()


def _exists(path: str) -> bool:
    return path == ":memory:" or Path(path).is_file()


def load_signer(signing_key: str | None) -> Signer:
    """The signer of ``--signing-key``; its absence is bad input (exit 2)."""
    if not signing_key:
        raise SigningKeyError(
            f"changing a mode needs the signing key; pass --signing-key PATH or set "
            f"{SIGNING_KEY_ENV} (make a pair with 'onsale-obs keys generate')."
        )
    from onsale_obs.modes import Signer

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
    from onsale_obs.modes import Verifier

    return Verifier.from_files(paths)


def optional_verifier(verify_key: str | None) -> Verifier | None:
    """The ``--verify-key`` list for a publisher, or None to trust only its own key."""
    paths: list[str | os.PathLike[str]] = list(split_paths(verify_key))
    if not paths:
        return None
    from onsale_obs.modes import Verifier

    return Verifier.from_files(paths)
