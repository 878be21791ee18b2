"""The receivers file of ``alertmanager render``, validated with pydantic: who gets paged, where
tickets go, what business hours are, and how fast each regime is notified.

Every key is optional; an empty file (or none at all) gives webhooks on localhost, business
hours Monday to Friday 09:00-17:00 UTC and the default timings::

    pager:                      # on-sale P1 at any hour, P2 in business hours
      pagerduty: {routing_key_file: /etc/alertmanager/secrets/pagerduty}   # optional
      opsgenie: {api_key_file: /etc/alertmanager/secrets/opsgenie}         # optional
      webhook_url: http://127.0.0.1:9095/alerts/page                       # fallback
    ticket: {webhook_url: http://127.0.0.1:9095/alerts/ticket}             # P3 (and P4)
    info: {webhook_url: http://127.0.0.1:9095/alerts/info}                 # optional: P4
    default: {webhook_url: http://127.0.0.1:9095/alerts/default}           # anything else
    business_hours: {time_zone: UTC, weekdays: ["monday:friday"], times: ["09:00-17:00"]}
    timing:
      page: {group_wait: 10s, group_interval: 1m, repeat_interval: 1h}
"""

from __future__ import annotations

import re
from typing import Annotated, Final
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from onsale_obs.durations import prometheus_duration

DEFAULT_WEBHOOK: Final = "http://127.0.0.1:9095/alerts"
#: In Alertmanager's order: a week runs from Sunday, so ``monday:sunday`` is backwards.
WEEKDAYS: Final = (
    "sunday",
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
)
_CLOCK: Final = re.compile(r"([01]\d|2[0-4]):([0-5]\d)")


def _url(value: str) -> str:
    parts = urlsplit(value)
    if (
        parts.scheme not in ("http", "https")
        or not parts.hostname
        or any(c.isspace() for c in value)
    ):
        raise ValueError(f"expected an http:// or https:// URL with a host, got {value!r}")
    return value


def _file_path(value: str) -> str:
    if not value.strip() or "\n" in value:
        raise ValueError("expected the path of a file that holds the secret")
    return value


def _duration(value: str) -> str:
    # Alertmanager's own duration syntax: "1.5h" or "90" would pass our CLI parser, not it
    prometheus_duration(value)
    return value


def duration_seconds(value: str) -> int:
    """Seconds of an Alertmanager duration (``1h30m`` -> 5400); 0 when it does not parse."""
    try:
        return int(prometheus_duration(value))
    except ValueError:
        return 0


def _weekday(value: str) -> str:
    text = value.strip().lower()
    ends = text.split(":")
    if len(ends) > 2 or any(end not in WEEKDAYS for end in ends):
        raise ValueError(
            f"expected a weekday ({', '.join(WEEKDAYS)}) or a range such as monday:friday, "
            f"got {value!r}"
        )
    if len(ends) == 2 and WEEKDAYS.index(ends[0]) > WEEKDAYS.index(ends[1]):
        raise ValueError(
            f"the range {value!r} runs backwards; Alertmanager's week starts on Sunday, "
            "so write sunday:saturday for every day, or two entries (friday:saturday, sunday) "
            "for a range across the weekend"
        )
    return text


def _minutes(clock: str) -> int | None:
    match = _CLOCK.fullmatch(clock.strip())
    if match is None:
        return None
    minutes = int(match.group(1)) * 60 + int(match.group(2))
    return minutes if minutes <= 24 * 60 else None


def _time_range(value: str) -> str:
    ends = value.split("-")
    bounds = [_minutes(end) for end in ends] if len(ends) == 2 else [None]
    if any(b is None for b in bounds):
        raise ValueError(f"expected a time range HH:MM-HH:MM such as 09:00-17:00, got {value!r}")
    start, end = bounds
    if start is None or end is None or start >= end or start >= 24 * 60:
        raise ValueError(
            f"the range {value!r} must start before it ends, within one day "
            "(00:00 to 24:00); write two ranges for hours across midnight"
        )
    return f"{ends[0].strip()}-{ends[1].strip()}"


def _time_zone(value: str) -> str:
    if value == "UTC":
        return value
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"expected an IANA time zone such as UTC, Europe/London or America/New_York, "
            f"got {value!r}"
        ) from None
    return value


Url = Annotated[str, AfterValidator(_url)]
SecretFile = Annotated[str, AfterValidator(_file_path)]
Duration = Annotated[str, AfterValidator(_duration)]
Weekday = Annotated[str, AfterValidator(_weekday)]
TimeRange = Annotated[str, AfterValidator(_time_range)]
TimeZone = Annotated[str, AfterValidator(_time_zone)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PagerDutyModel(_Strict):
    """PagerDuty Events API v2: the integration's routing key is read from a file."""

    routing_key_file: SecretFile
    url: Url | None = Field(default=None, description="events API endpoint, e.g. for the EU")


class OpsgenieModel(_Strict):
    """Opsgenie: the API key is read from a file."""

    api_key_file: SecretFile
    api_url: Url | None = Field(default=None, description="API endpoint, e.g. for the EU")


class PagerModel(_Strict):
    """Who gets woken up: PagerDuty and/or Opsgenie, plus a webhook fallback."""

    pagerduty: PagerDutyModel | None = None
    opsgenie: OpsgenieModel | None = None
    webhook_url: Url | None = f"{DEFAULT_WEBHOOK}/page"

    @model_validator(mode="after")
    def _somewhere(self) -> PagerModel:
        if self.pagerduty is None and self.opsgenie is None and self.webhook_url is None:
            raise ValueError(
                "a pager needs somewhere to send pages: pagerduty, opsgenie or webhook_url"
            )
        return self


class WebhookModel(_Strict):
    """A receiver that posts to one webhook (a ticket system, a chat bridge)."""

    webhook_url: Url


def _webhook(path: str) -> WebhookModel:
    return WebhookModel(webhook_url=f"{DEFAULT_WEBHOOK}/{path}")


def _mon_to_fri() -> list[str]:
    return ["monday:friday"]


def _nine_to_five() -> list[str]:
    return ["09:00-17:00"]


class BusinessHoursModel(_Strict):
    """When a person may be paged for a slow burn, and when tickets are delivered."""

    time_zone: TimeZone = "UTC"
    weekdays: list[Weekday] = Field(default_factory=_mon_to_fri, min_length=1)
    times: list[TimeRange] = Field(default_factory=_nine_to_five, min_length=1)


class TimingModel(_Strict):
    """How long Alertmanager waits before the first notification of a group, between
    notifications of a changed group, and before repeating an unchanged one."""

    group_wait: Duration
    group_interval: Duration
    repeat_interval: Duration

    @model_validator(mode="after")
    def _repeat_after_interval(self) -> TimingModel:
        if duration_seconds(self.repeat_interval) < duration_seconds(self.group_interval):
            raise ValueError(
                f"repeat_interval ({self.repeat_interval}) must not be shorter than "
                f"group_interval ({self.group_interval})"
            )
        return self


# One class per regime so a regime given in part keeps its own defaults for the rest, and
# a mistake is reported at timing.<regime>.


class PageTiming(TimingModel):
    """P1: the first page within seconds, repeated hourly while the burn goes on."""

    group_wait: Duration = "10s"
    group_interval: Duration = "1m"
    repeat_interval: Duration = "1h"


class BusinessPageTiming(TimingModel):
    """P2: a page in business hours; a slow burn can wait half a minute."""

    group_wait: Duration = "30s"
    group_interval: Duration = "5m"
    repeat_interval: Duration = "4h"


class TicketTiming(TimingModel):
    """P3 and P4: batched, reminded daily."""

    group_wait: Duration = "5m"
    group_interval: Duration = "30m"
    repeat_interval: Duration = "24h"


class DefaultTiming(TimingModel):
    """Anything the routes do not know (Alertmanager's own defaults)."""

    group_wait: Duration = "30s"
    group_interval: Duration = "5m"
    repeat_interval: Duration = "4h"


class TimingsModel(_Strict):
    """Timing per regime."""

    page: PageTiming = Field(default_factory=PageTiming)
    business_page: BusinessPageTiming = Field(default_factory=BusinessPageTiming)
    ticket: TicketTiming = Field(default_factory=TicketTiming)
    default: DefaultTiming = Field(default_factory=DefaultTiming)


class ReceiversConfig(_Strict):
    """Where generated SLO alerts go; see the module docstring for the file format."""

    pager: PagerModel = Field(default_factory=PagerModel)
    ticket: WebhookModel = Field(default_factory=lambda: _webhook("ticket"))
    info: WebhookModel | None = None
    default: WebhookModel = Field(default_factory=lambda: _webhook("default"))
    business_hours: BusinessHoursModel = Field(default_factory=BusinessHoursModel)
    timing: TimingsModel = Field(default_factory=TimingsModel)
