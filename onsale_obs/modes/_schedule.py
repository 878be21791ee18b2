"""On-sale windows known in advance, loaded from YAML or added from the CLI.

File format::

    onsales:
      - event: final-2026            # or `scope: global`
        start: 2026-12-01T10:00:00Z
        end: 2026-12-01T12:00:00Z    # the expected end; the broadcaster sets `until` to it
        reason: Cup final general sale
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from onsale_obs.exceptions import ScheduleError
from onsale_obs.modes._log import modes_logger
from onsale_obs.modes._model import GLOBAL_SCOPE, check_reason, event_scope, iso, parse_scope
from onsale_obs.yamlfile import read_yaml


@dataclass(frozen=True, slots=True)
class ScheduledWindow:
    """One planned on-sale: ``scope`` is on sale from ``start`` until ``end`` (epoch seconds)."""

    scope: str
    start: float
    end: float
    reason: str = ""

    def contains(self, now: float) -> bool:
        """True while ``now`` is inside the window."""
        return self.start <= now < self.end

    def to_json(self) -> dict[str, Any]:
        """The documented JSON shape of a scheduled window."""
        return {
            "scope": self.scope,
            "start": iso(self.start),
            "end": iso(self.end),
            "reason": self.reason,
        }


class Schedule:
    """A set of planned on-sale windows; answers "is this scope on sale at ``now``?"."""

    def __init__(self, windows: Iterable[ScheduledWindow] = ()) -> None:
        self.windows: tuple[ScheduledWindow, ...] = tuple(
            sorted(windows, key=lambda w: (w.start, w.scope))
        )

    def __len__(self) -> int:
        return len(self.windows)

    def active(self, scope: str, now: float) -> ScheduledWindow | None:
        """The window that puts ``scope`` on sale at ``now`` (latest end wins), or None."""
        found = [w for w in self.windows if w.scope == scope and w.contains(now)]
        return max(found, key=lambda w: w.end) if found else None

    def is_onsale(self, event: str | None, now: float) -> bool:
        """Effective scheduled mode of a request: its event's window or a global one."""
        for w in self.windows:
            if w.contains(now) and (
                w.scope == GLOBAL_SCOPE or (event is not None and w.scope == "event:" + event)
            ):
                return True
        return False

    def scopes(self) -> set[str]:
        """Every scope the schedule mentions."""
        return {w.scope for w in self.windows}

    def with_window(self, window: ScheduledWindow) -> Schedule:
        """A copy with one more window."""
        return Schedule((*self.windows, window))

    def without(self, scope: str, start: float | None = None) -> Schedule:
        """A copy without the windows of ``scope`` (only the one starting at ``start`` if given)."""
        return Schedule(
            w
            for w in self.windows
            if not (w.scope == scope and (start is None or w.start == start))
        )

    @classmethod
    def from_data(cls, data: Any, *, file: str = "<schedule>") -> Schedule:
        """Validate parsed YAML; errors name the file and the path inside it."""
        if data is None:
            return cls()
        from pydantic import ValidationError  # loaded only when a schedule file is read

        from onsale_obs.modes._schedule_spec import ScheduleSpec

        try:
            spec = ScheduleSpec.model_validate(data)
        except ValidationError as exc:
            raise ScheduleError.from_validation(
                exc, file=file, data=data, model=ScheduleSpec
            ) from None
        windows = []
        for i, w in enumerate(spec.onsales):
            try:
                scope = event_scope(w.event) if w.event is not None else parse_scope(w.scope or "")
                reason = check_reason(w.reason)
            except ScheduleError:
                raise
            except Exception as exc:
                raise ScheduleError(str(exc), file=file, field=f"onsales.{i}") from None
            windows.append(ScheduledWindow(scope, w.start.timestamp(), w.end.timestamp(), reason))
        return cls(windows)

    @classmethod
    def load(cls, path: str | Path, *, explicit: bool = False) -> Schedule:
        """Read a schedule YAML file; a missing or empty file is an empty schedule.

        ``explicit``: a file that ends running on-sales must say so, so only an existing file
        with an ``onsales:`` list is accepted (``onsales: []`` plans none); a missing, empty
        or unreadable file raises ``ScheduleError`` naming it.
        """
        p = Path(path)
        if not explicit and not p.exists():
            return cls()
        data = read_yaml(p, expected="an on-sale schedule YAML file", error=ScheduleError)
        if explicit and (data is None or (isinstance(data, dict) and "onsales" not in data)):
            raise ScheduleError(
                "plans nothing (it is empty or has no 'onsales:' list); expected the planned "
                "windows under 'onsales:', or 'onsales: []' to end every scheduled on-sale.",
                file=str(p),
                field="onsales",
            )
        return cls.from_data(data, file=str(p))

    def to_data(self) -> dict[str, Any]:
        """The YAML-ready form of the schedule (round-trips through ``from_data``)."""
        out = []
        for w in self.windows:
            item: dict[str, Any] = (
                {"scope": w.scope}
                if w.scope == GLOBAL_SCOPE
                else {"event": w.scope[len("event:") :]}
            )
            item["start"] = datetime.fromtimestamp(w.start, UTC).isoformat().replace("+00:00", "Z")
            item["end"] = datetime.fromtimestamp(w.end, UTC).isoformat().replace("+00:00", "Z")
            if w.reason:
                item["reason"] = w.reason
            out.append(item)
        return {"onsales": out}

    def save(self, path: str | Path) -> None:
        """Write the schedule as YAML, atomically."""
        import yaml

        p = Path(path)
        tmp = p.with_name(p.name + ".tmp")
        try:
            tmp.write_text(yaml.safe_dump(self.to_data(), sort_keys=False))
            tmp.replace(p)
        except OSError as exc:
            raise ScheduleError(
                f"cannot write the schedule ({exc.strerror or exc}).", file=str(p)
            ) from None


def _signature(path: Path) -> tuple[int, int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size, st.st_ino)


class ScheduleFile:
    """A schedule file followed as it changes: a version that cannot be used never replaces
    the last good schedule, so a file moved away, truncated or half-written ends no on-sale.

    Each refused version is logged (``logger``, structlog-style) and counted in ``refused``.
    """

    def __init__(self, path: str | Path, *, logger: Any = None) -> None:
        self.path = Path(path)
        self.schedule = Schedule.load(self.path, explicit=True)  # a bad file at start raises
        self.refused = 0
        self._seen = _signature(self.path)
        self._failing: str | None = None
        self._log = logger if logger is not None else modes_logger()

    def refresh(self) -> ScheduleError | None:
        """Re-read the file if it changed (or its last version was refused).

        Returns the error when a new version is refused now (the last good schedule stays in
        force); a version already refused is not reported again until it changes.
        """
        seen = _signature(self.path)
        if seen == self._seen and self._failing is None:
            return None
        changed, self._seen = seen != self._seen, seen
        try:
            schedule = Schedule.load(self.path, explicit=True)
        except ScheduleError as exc:
            if not changed and str(exc) == self._failing:
                return None  # retried in case it was read mid-write; already reported
            self._failing = str(exc)
            self.refused += 1
            self._log.warning(
                "schedule file refused; keeping the last good schedule",
                file=str(self.path),
                error=str(exc),
                windows=len(self.schedule),
                refused=self.refused,
            )
            return exc
        if self._failing is not None:
            self._log.info("schedule file usable again", file=str(self.path), windows=len(schedule))
        self._failing = None
        self.schedule = schedule
        return None
