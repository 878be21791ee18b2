"""Every error onsale-obs raises on purpose, so callers can catch one family.

    OnsaleObsError
    ├── BadInputError          bad spec, file, argument or message (CLI exit code 2)
    │   ├── ScheduleError      an on-sale schedule file or window is invalid
    │   └── SpecError          an SLO spec file is invalid
    ├── SigningKeyError        a signing or verify key is missing or unreadable (exit 2)
    ├── BackendUnavailableError the mode store cannot be reached (exit 3)
    │   ├── PrometheusUnavailableError  Prometheus cannot be reached or failed (exit 3)
    │   ├── StoreIntegrityError the mode store does not match its signed head (exit 3)
    │   └── ReplicationTimeoutError a transition not yet on the replicas asked for (exit 3)
    ├── ContentionError        publishers kept losing the revision race; nothing written (exit 3)
    ├── RevisionConflictError  another publisher took the revision first (retried internally)
    └── StaleWriteError        the store changed since it was read: a conditional write is skipped

Messages are whole sentences that say what was expected; structured attributes (``file``,
``field``) let tools point at the place.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Self

from onsale_obs.redact import redact_text, redact_url


class OnsaleObsError(Exception):
    """Base class of every error raised by onsale-obs."""

    exit_code = 1


class BadInputError(OnsaleObsError, ValueError):
    """Input (a file, a field, an argument or a message) is not what was expected."""

    exit_code = 2

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        field: str | None = None,
        line: int | None = None,
        column: int | None = None,
    ) -> None:
        self.file = file
        self.field = field
        #: Where in the file (from 1), when the file was read with its positions.
        self.line = line
        self.column = column
        #: The message without the file and field prefix.
        self.detail = message
        #: Every problem found in the input, this one first (see :meth:`several`).
        self.problems: tuple[BadInputError, ...] = (self,)
        super().__init__(self.one_line())

    def one_line(self) -> str:
        """``file:line:column, field 'path': message`` (the parts that are known)."""
        place = self.file
        if place and self.line is not None:
            place = f"{place}:{self.line}:{self.column or 1}"
        field = f"field {self.field!r}" if self.field else None
        where = ", ".join(p for p in (place, field) if p)
        return f"{where}: {self.detail}" if where else self.detail

    @classmethod
    def several(cls, problems: Sequence[BadInputError]) -> Self:
        """One error for many problems: the first is its own, every one is listed, a line each."""
        first = problems[0]
        error = cls(
            first.detail, file=first.file, field=first.field, line=first.line, column=first.column
        )
        error.problems = (error, *problems[1:])
        if len(problems) > 1:
            error.args = ("\n".join(p.one_line() for p in error.problems),)
        return error

    @classmethod
    def from_validation(
        cls, exc: Any, *, file: str, data: Any = None, model: Any = None, located: Any = None
    ) -> Self:
        """Every error of a pydantic ``ValidationError``, each naming the file and the field.

        The one translator is :func:`onsale_obs.validation.problems`; give ``data`` (what was
        validated) and ``model`` for paths as written in the file and lists of known keys,
        ``located`` for lines and columns.
        """
        from onsale_obs.validation import problems

        found = problems(exc, data, file=file, model=model, located=located, error=cls)
        return cls.several(found)


class ScheduleError(BadInputError):
    """An on-sale schedule (YAML file or CLI window) is invalid."""


class SpecError(BadInputError):
    """An SLO spec file is invalid (the message names the file and the path inside it)."""


class SigningKeyError(OnsaleObsError):
    """A signing or verify key is missing, unreadable or of the wrong kind."""

    exit_code = 2

    def __init__(self, message: str, *, file: str | None = None) -> None:
        self.file = file
        super().__init__(f"{file}: {message}" if file else message)


class BackendUnavailableError(OnsaleObsError):
    """The mode store (sqlite file, Redis server) could not be reached."""

    exit_code = 3

    def __init__(self, message: str, *, url: str | None = None) -> None:
        #: the URL with any password or token masked: safe to print, log or put in JSON
        self.url = redact_url(url) if url else None
        if url:
            message = redact_text(message, url)
        super().__init__(f"{self.url}: {message}" if self.url else message)


class RevisionConflictError(OnsaleObsError):
    """Another publisher appended a newer revision first; the caller retries."""


class PrometheusUnavailableError(BackendUnavailableError):
    """Prometheus (or a compatible API) could not be reached or answered with an error (exit 3)."""


class StaleWriteError(OnsaleObsError):
    """A write conditional on the store's latest revision found a newer one: nothing written."""


class StoreIntegrityError(BackendUnavailableError):
    """The mode store does not match its signed head (edited, emptied or restored): exit 3.

    Raised to publishers, which refuse to build on a history they cannot verify; readers keep
    serving the states they verified and report themselves stale instead.
    """


class ContentionError(OnsaleObsError):
    """Too many publishers wrote at once: the write lost the revision race until its deadline.

    Nothing was written; running it again is safe (exit 3, like a store that cannot take writes).
    """

    exit_code = 3


class ReplicationTimeoutError(BackendUnavailableError):
    """A transition is on the Redis primary but not yet acknowledged by its replicas (exit 3).

    Publishers ask for ``wait`` replicas (``redis+sentinel://`` URLs: 1) so that an
    acknowledged transition survives a failover; when they do not answer within
    ``wait_timeout`` the publish reports this instead of success.
    """
