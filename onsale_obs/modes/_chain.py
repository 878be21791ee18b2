"""The store is an untrusted transport: what every reader checks before it believes a mode.

Two structures, both signed by the publishers' key, make a store's content verifiable
without trusting the store (in the spirit of TUF's snapshot and timestamp roles):

- **The chain.** Every state names the revision and SHA-256 of the message published just
  before it (``prev``), so the log is a hash chain: an entry deleted, reordered, re-added or
  replaced breaks a link that nobody without the key can mend.
- **The head.** Written atomically with every append and re-signed on a heartbeat: the
  history's last revision, the digest of its message (``tip``), a digest of every scope's
  latest message (``states``), when it was signed (``issued``) and how often its publisher
  promises to re-sign it (``refresh``). A reader checks any snapshot against it, tells "nothing
  happened" from "the store is frozen" (a head older than its promise), and notices a store
  that went back (a head gone, older, or naming another tip).

Nothing here reads a store; ``_verify.py`` applies these checks to what a backend returns.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from onsale_obs.exceptions import BadInputError
from onsale_obs.modes._model import GENESIS, MAX_REVISION, MAX_TIME, ModeState, is_digest

#: A reader marks itself stale once the newest head is older than this many refresh intervals.
FRESHNESS_FACTOR = 3.0


def digest(message: bytes) -> str:
    """SHA-256 of a message as stored, in lowercase hex (the chain's and head's unit)."""
    return hashlib.sha256(message).hexdigest()


def states_digest(digests: Mapping[str, str]) -> str:
    """One digest over every scope's latest message, independent of order."""
    h = hashlib.sha256()
    for scope in sorted(digests):
        h.update(f"{scope}={digests[scope]}\n".encode())
    return h.hexdigest()


EMPTY_STATES = states_digest({})


@dataclass(frozen=True, slots=True)
class Head:
    """The signed summary of a history; see the module docstring."""

    revision: int
    tip: str
    states: str
    issued: float
    refresh: float | None = None

    def fresh_at(self, now: float) -> bool:
        """False once the head is older than its publisher promised (no promise: always True)."""
        if self.refresh is None:
            return True
        return now - self.issued <= FRESHNESS_FACTOR * self.refresh

    def to_payload(self) -> dict[str, Any]:
        """The fields that are signed."""
        return {
            "v": 1,
            "kind": "head",
            "revision": self.revision,
            "tip": self.tip,
            "states": self.states,
            "issued": self.issued,
            "refresh": self.refresh,
        }

    @classmethod
    def from_payload(cls, payload: Any) -> Head:
        """Build a head from a decoded payload, raising ``BadInputError`` on any bad field."""
        if not isinstance(payload, dict) or payload.get("kind") != "head":
            raise BadInputError("not a signed head.", field="kind")
        if payload.get("v") != 1:
            raise BadInputError(f"unsupported head version {payload.get('v')!r}.", field="v")
        revision = payload.get("revision")
        if isinstance(revision, bool) or not isinstance(revision, int):
            raise BadInputError("revision must be an integer.", field="revision")
        if not 0 <= revision <= MAX_REVISION:
            raise BadInputError(f"revision {revision} is out of range.", field="revision")
        tip = payload.get("tip")
        if not (is_digest(tip) or (revision == 0 and tip == GENESIS)):
            raise BadInputError("tip must be a SHA-256 digest.", field="tip")
        states = payload.get("states")
        if not is_digest(states):
            raise BadInputError("states must be a SHA-256 digest.", field="states")
        issued = _finite(payload.get("issued"), "issued")
        if not 0 <= issued <= MAX_TIME:
            raise BadInputError("issued is out of range.", field="issued")
        refresh_raw = payload.get("refresh")
        refresh = None if refresh_raw is None else _finite(refresh_raw, "refresh")
        if refresh is not None and refresh <= 0:
            raise BadInputError("refresh must be a positive number of seconds.", field="refresh")
        assert isinstance(tip, str)
        assert isinstance(states, str)
        return cls(revision, tip, states, issued, refresh)


def _finite(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise BadInputError(f"{name} must be a finite number.", field=name)
    return float(value)


@dataclass(frozen=True, slots=True)
class Passed:
    """A state on the chain that this reader does not apply: signed by a key it does not trust.

    A publisher whose key the reader trusts committed to its bytes (the next state's ``prev``
    digest, or a head's ``tip``), so it is part of the history and its link can be followed;
    but what it says was signed by another key (a surge detector's, say), so the reader keeps
    serving the state of its scope from before it.
    """

    scope: str
    revision: int
    prev_revision: int
    prev_digest: str


@dataclass
class Chain:
    """A verified history: where it ends and the latest state of every scope in it."""

    tip_revision: int = 0
    tip_digest: str = GENESIS
    states: dict[str, ModeState] = field(default_factory=dict)
    digests: dict[str, str] = field(default_factory=dict)

    def link_error(self, state: ModeState | Passed) -> str | None:
        """Why ``state`` cannot be the next state of this history (None: it can)."""
        if state.prev_digest is None:
            return f"revision {state.revision} is not chained (written by onsale-obs 0.1?)"
        if state.prev_revision != self.tip_revision or state.prev_digest != self.tip_digest:
            return (
                f"revision {state.revision} follows revision {state.prev_revision}, "
                f"not this history's last state (revision {self.tip_revision})"
            )
        return None

    def extend(self, state: ModeState | Passed, message_digest: str) -> None:
        """Append a state whose link was checked (``link_error`` is None).

        A ``Passed`` state moves the chain on without changing what its scope is served as.
        """
        if isinstance(state, ModeState):
            self.states[state.scope] = state
        self.digests[state.scope] = message_digest
        self.tip_revision = state.revision
        self.tip_digest = message_digest

    def states_digest(self) -> str:
        """The digest a head over this history carries."""
        return states_digest(self.digests)

    def matches(self, head: Head) -> bool:
        """True when ``head`` vouches for exactly this history."""
        return (
            head.revision == self.tip_revision
            and head.tip == self.tip_digest
            and head.states == self.states_digest()
        )

    def copy(self) -> Chain:
        """An independent copy (extending it leaves this one as it is)."""
        return Chain(self.tip_revision, self.tip_digest, dict(self.states), dict(self.digests))

    def head(self, issued: float, refresh: float | None) -> Head:
        """The head that vouches for this history."""
        return Head(self.tip_revision, self.tip_digest, self.states_digest(), issued, refresh)
