"""Mode broadcasting: which scopes are on sale, signed, versioned and kept current in every service."""

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
