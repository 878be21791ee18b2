"""Mode broadcasting: which scopes are on sale, signed, versioned and kept current in every service.

Every public name is imported from its submodule on first use (PEP 562), so importing one of
them loads only what it needs: ``from onsale_obs.modes import ModeState`` does not load the
backends, the subscriber (prometheus_client) or cryptography, which the CLI's start-up would
otherwise pay for on every command (README, "CLI start-up").
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from onsale_obs.modes._backend import Batch, Entry, ModeBackend, Snapshot
    from onsale_obs.modes._broadcaster import Broadcaster
    from onsale_obs.modes._chain import Head
    from onsale_obs.modes._current import VerifiedStates, current_states
    from onsale_obs.modes._history import ModeHistory, read_history, windows_from_states
    from onsale_obs.modes._memory import MemoryBackend
    from onsale_obs.modes._model import (
        GLOBAL_SCOPE,
        MAX_TIME,
        ModeState,
        OnSaleWindow,
        check_reason,
        event_scope,
        parse_mode,
        parse_scope,
        scope_event,
    )
    from onsale_obs.modes._open import BACKEND_ENV, DEFAULT_BACKEND_URL, open_backend
    from onsale_obs.modes._repair import RepairPlan
    from onsale_obs.modes._schedule import Schedule, ScheduledWindow
    from onsale_obs.modes._signing import (
        REJECT_REASONS,
        KeyPairFiles,
        RejectedMessage,
        Signer,
        Verifier,
        generate_key_pair,
    )
    from onsale_obs.modes._sqlite import SqliteBackend
    from onsale_obs.modes._subscriber import ModeSubscriber, Resolution
    from onsale_obs.modes._verify import StoreView, verify_store

#: Where each public name lives (the submodule of this package that defines it).
_EXPORTS: dict[str, str] = {
    "BACKEND_ENV": "_open",
    "DEFAULT_BACKEND_URL": "_open",
    "GLOBAL_SCOPE": "_model",
    "MAX_TIME": "_model",
    "REJECT_REASONS": "_signing",
    "Batch": "_backend",
    "Broadcaster": "_broadcaster",
    "Entry": "_backend",
    "Head": "_chain",
    "KeyPairFiles": "_signing",
    "MemoryBackend": "_memory",
    "ModeBackend": "_backend",
    "ModeHistory": "_history",
    "ModeState": "_model",
    "ModeSubscriber": "_subscriber",
    "OnSaleWindow": "_model",
    "RejectedMessage": "_signing",
    "RepairPlan": "_repair",
    "Resolution": "_subscriber",
    "Schedule": "_schedule",
    "ScheduledWindow": "_schedule",
    "Signer": "_signing",
    "Snapshot": "_backend",
    "SqliteBackend": "_sqlite",
    "StoreView": "_verify",
    "VerifiedStates": "_current",
    "Verifier": "_signing",
    "check_reason": "_model",
    "current_states": "_current",
    "event_scope": "_model",
    "generate_key_pair": "_signing",
    "open_backend": "_open",
    "parse_mode": "_model",
    "parse_scope": "_model",
    "read_history": "_history",
    "scope_event": "_model",
    "verify_store": "_verify",
    "windows_from_states": "_history",
}

__all__ = [
    "BACKEND_ENV",
    "DEFAULT_BACKEND_URL",
    "GLOBAL_SCOPE",
    "MAX_TIME",
    "REJECT_REASONS",
    "Batch",
    "Broadcaster",
    "Entry",
    "Head",
    "KeyPairFiles",
    "MemoryBackend",
    "ModeBackend",
    "ModeHistory",
    "ModeState",
    "ModeSubscriber",
    "OnSaleWindow",
    "RejectedMessage",
    "RepairPlan",
    "Resolution",
    "Schedule",
    "ScheduledWindow",
    "Signer",
    "Snapshot",
    "SqliteBackend",
    "StoreView",
    "VerifiedStates",
    "Verifier",
    "check_reason",
    "current_states",
    "event_scope",
    "generate_key_pair",
    "open_backend",
    "parse_mode",
    "parse_scope",
    "read_history",
    "scope_event",
    "verify_store",
    "windows_from_states",
]


def __getattr__(name: str) -> Any:
    """A public name, imported from its submodule the first time it is asked for."""
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
