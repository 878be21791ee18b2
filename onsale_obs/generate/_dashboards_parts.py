"""Building blocks shared by the generated Grafana dashboards: queries, variables, panels.

Everything here returns grafana-foundation-sdk builders; nothing writes dashboard JSON by hand.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Final

from grafana_foundation_sdk.builders import common as common_builders
from grafana_foundation_sdk.builders import dashboard as dash
from grafana_foundation_sdk.builders import prometheus, stat, timeseries
from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models import dashboard as model

from onsale_obs.durations import format_duration
from onsale_obs.generate._promql import quote
from onsale_obs.slo._spec import SLO
from onsale_obs.types import Mode

#: Tag on every generated dashboard; the dashboards link to each other through it.
TAG: Final = "onsale-obs"
#: Grafana rejects dashboard UIDs longer than this.
UID_MAX: Final = 40
MODE_TITLES: Final[dict[Mode, str]] = {"normal": "normal time", "onsale": "on-sale"}
MODE_DURING: Final[dict[Mode, str]] = {"normal": "in normal time", "onsale": "during on-sales"}
#: A burn rate has no unit of its own: "12x" reads as "12 times the sustainable rate".
BURN_UNIT: Final = "suffix:x"
RATE_INTERVAL: Final = "$__rate_interval"
_SLUG_BAD: Final = re.compile(r"[^a-z0-9_-]+")


def datasource() -> model.DataSourceRef:
    """The Prometheus chosen in ``$datasource``: every panel, annotation and variable reads it."""
    return model.DataSourceRef(type_val="prometheus", uid="${datasource}")


def slug(name: str) -> str:
    """A file- and UID-safe form of ``name``; a hash keeps two different names apart."""
    cleaned = _SLUG_BAD.sub("-", name.lower()).strip("-")
    if cleaned == name and cleaned:
        return cleaned
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    return f"{cleaned}-{digest}" if cleaned else digest


def uid(prefix: str, name: str) -> str:
    """A stable dashboard UID from a name, within Grafana's 40 characters."""
    candidate = f"{prefix}-{slug(name)}"
    if len(candidate) <= UID_MAX:
        return candidate
    return f"{prefix}-{hashlib.sha256(name.encode()).hexdigest()[: UID_MAX - len(prefix) - 1]}"


def error_budget(objective: float) -> float:
    """``1 - objective`` without float noise (``1 - 0.9999`` is ``9.999999999998899e-05``)."""
    return float(1 - Decimal(str(objective)))


def percent(fraction: float) -> str:
    """``0.9999`` -> ``"99.99%"``."""
    return f"{Decimal(str(fraction)) * 100:f}".rstrip("0").rstrip(".") + "%"


def window(seconds: float) -> str:
    """The suffix of a recording rule for a window: ``300`` -> ``5m`` (``slo:...:ratio_rate5m``)."""
    return format_duration(seconds)


def fast_windows(slo: SLO, mode: Mode) -> tuple[float, float]:
    """(long, short) window of the mode's fastest-burning rule: what "burning now" means."""
    rules = slo.policy[mode]
    if not rules:
        return (3600.0, 300.0) if mode == "normal" else (300.0, 60.0)
    fastest = max(rules, key=lambda r: (r.burn_rate, -r.long))
    return fastest.long, fastest.short


def burn_rates(slos: Iterable[SLO], mode: Mode) -> list[float]:
    """Every alerting burn rate of ``mode`` in these SLOs' policies, ascending."""
    return sorted({r.burn_rate for s in slos for r in s.policy[mode]})


def labels(**matchers: str) -> str:
    """``{a="x",b=~"y"}`` from keyword arguments; a value starting with ``~`` is a regex match.

    Values may be Grafana variables (``$service``): Grafana substitutes them before the
    query reaches Prometheus.
    """
    parts = []
    for name, value in matchers.items():
        op, text = ("=~", value[1:]) if value.startswith("~") else ("=", value)
        parts.append(f"{name}{op}{quote(text)}")
    return "{" + ",".join(parts) + "}"


@dataclass
class PanelIds:
    """Hands out panel ids 1, 2, 3... in build order, so the JSON is the same every time."""

    last: int = field(default=0)

    def next(self) -> int:
        """The next unused id."""
        self.last += 1
        return self.last


def target(expr: str, legend: str, ref: str, *, instant: bool = False) -> prometheus.Dataquery:
    """One Prometheus query of a panel."""
    query = (
        prometheus.Dataquery().expr(expr).legend_format(legend).ref_id(ref).datasource(datasource())
    )
    return query.instant() if instant else query.range()


def ref_ids(count: int) -> list[str]:
    """``A``, ``B``, ... as Grafana names a panel's queries."""
    return [chr(ord("A") + i) for i in range(count)]


def datasource_variable() -> dash.DatasourceVariable:
    """``$datasource``: which Prometheus (or Thanos, Mimir...) every query runs against."""
    return (
        dash.DatasourceVariable("datasource")
        .label("Prometheus")
        .type("prometheus")
        .description("Prometheus-compatible data source that scrapes the services.")
    )


def query_variable(
    name: str,
    label: str,
    query: str,
    description: str,
    *,
    multi: bool,
    current: str | None = None,
) -> dash.QueryVariable:
    """A ``label_values(...)`` variable; ``multi`` ones offer "All" (regex ``.*``)."""
    variable = (
        dash.QueryVariable(name)
        .label(label)
        .description(description)
        .query(query)
        .datasource(datasource())
        .refresh(model.VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(model.VariableSort.ALPHABETICAL_ASC)
        .multi(multi)
        .include_all(multi)
    )
    if multi:
        # ".*" rather than Grafana's list of every value: it also matches the empty label
        # (requests outside any on-sale have event="") and stays short with many events.
        variable = variable.all_value(".*").current(
            model.VariableOption(selected=True, text="All", value="$__all")
        )
    elif current is not None:
        variable = variable.current(
            model.VariableOption(selected=True, text=current, value=current)
        )
    return variable


class _PrometheusAnnotationQuery(model.AnnotationQuery):
    """The SDK's annotation model with the fields only Prometheus annotations have."""

    def __init__(self, *, title_format: str, tag_keys: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.title_format = title_format
        self.tag_keys = tag_keys

    def to_json(self) -> dict[str, object]:
        payload = super().to_json()
        payload["titleFormat"] = self.title_format
        payload["tagKeys"] = self.tag_keys
        # a series that stays at 1 becomes one region from its first to its last sample
        payload["useValueForTime"] = False
        return payload


class OnSaleAnnotation(cogbuilder.Builder[model.AnnotationQuery]):
    """On-sale windows as annotation regions, one per scope, from ``onsale_mode == 1``."""

    def __init__(self, expr: str) -> None:
        self._model = _PrometheusAnnotationQuery(
            name="On-sale windows",
            datasource=datasource(),
            enable=True,
            hide=False,
            icon_color="red",
            expr=expr,
            title_format="On sale: {{scope}}",
            tag_keys="scope",
        )

    def build(self) -> model.AnnotationQuery:
        """The annotation query."""
        return self._model


def steps(base: str, *pairs: tuple[float, str]) -> dash.ThresholdsConfig:
    """Absolute thresholds: ``base`` colour below the first value, then each (value, colour)."""
    return (
        dash.ThresholdsConfig()
        .mode(model.ThresholdsMode.ABSOLUTE)
        .steps(
            [model.Threshold(value=None, color=base)]
            + [model.Threshold(value=v, color=c) for v, c in pairs]
        )
    )


def budget_steps() -> dash.ThresholdsConfig:
    """Red once the budget is overspent, orange in its last quarter, green before."""
    return steps("red", (0.0, "orange"), (0.25, "green"))


def burn_steps(rates: Sequence[float]) -> dash.ThresholdsConfig:
    """Green below the lowest alerting burn rate; warmer colours at each higher one."""
    colours = ("yellow", "orange", "red")
    ordered = sorted(set(rates))
    picked = list(zip(ordered, colours[-len(ordered) :], strict=False)) if ordered else []
    return steps("green", *picked)


def stat_panel(
    ids: PanelIds,
    title: str,
    description: str,
    targets: Sequence[prometheus.Dataquery],
    *,
    unit: str,
    thresholds: dash.ThresholdsConfig,
    width: int,
    height: int = 5,
    no_value: str = "no data",
    decimals: float | None = None,
    names_only: bool = False,
) -> stat.Panel:
    """A stat with the last value of each series, coloured by thresholds, with a sparkline.

    ``names_only`` shows just the series names (which scopes are on sale, say).
    """
    panel = (
        stat.Panel()
        .id(ids.next())
        .title(title)
        .description(description)
        .datasource(datasource())
        .targets(list(targets))
        .unit(unit)
        .thresholds(thresholds)
        .color_scheme(dash.FieldColor().mode(model.FieldColorModeId.THRESHOLDS))
        .color_mode(common.BigValueColorMode.BACKGROUND)
        .graph_mode(common.BigValueGraphMode.NONE if names_only else common.BigValueGraphMode.AREA)
        .text_mode(
            common.BigValueTextMode.NAME if names_only else common.BigValueTextMode.VALUE_AND_NAME
        )
        .reduce_options(common_builders.ReduceDataOptions().calcs(["lastNotNull"]).values(False))
        .no_value(no_value)
        .span(width)
        .height(height)
    )
    if decimals is not None:
        panel = panel.decimals(decimals)
    return panel


def timeseries_panel(
    ids: PanelIds,
    title: str,
    description: str,
    targets: Sequence[prometheus.Dataquery],
    *,
    unit: str,
    width: int = 12,
    height: int = 8,
    thresholds: dash.ThresholdsConfig | None = None,
    stacked: bool = False,
    soft_min: float | None = 0,
    decimals: float | None = None,
) -> timeseries.Panel:
    """A time series; ``thresholds`` are drawn as dashed lines (an objective, a burn rate)."""
    panel = (
        timeseries.Panel()
        .id(ids.next())
        .title(title)
        .description(description)
        .datasource(datasource())
        .targets(list(targets))
        .unit(unit)
        .line_width(1)
        .fill_opacity(10 if not stacked else 40)
        .span_nulls(False)
        .legend(
            common_builders.VizLegendOptions()
            .display_mode(common.LegendDisplayMode.LIST)
            .placement(common.LegendPlacement.BOTTOM)
            .show_legend(True)
        )
        .tooltip(
            common_builders.VizTooltipOptions()
            .mode(common.TooltipDisplayMode.MULTI)
            .sort(common.SortOrder.DESCENDING)
        )
        .span(width)
        .height(height)
    )
    if soft_min is not None:
        panel = panel.axis_soft_min(soft_min)
    if decimals is not None:
        panel = panel.decimals(decimals)
    if stacked:
        panel = panel.stacking(common_builders.StackingConfig().mode(common.StackingMode.NORMAL))
    if thresholds is not None:
        panel = panel.thresholds(thresholds).thresholds_style(
            common_builders.GraphThresholdsStyleConfig().mode(
                common.GraphThresholdsStyleMode.DASHED
            )
        )
    return panel


def row(ids: PanelIds, title: str) -> dash.Row:
    """An expanded row; the panels added after it belong to it (Grafana's layout for open rows)."""
    return dash.Row(title).id(ids.next()).collapsed(False)


def dashboard_links() -> dash.DashboardLink:
    """A drop-down of every generated dashboard (they share :data:`TAG`), keeping the time range."""
    return (
        dash.DashboardLink("On-sale dashboards")
        .type(model.DashboardLinkType.DASHBOARDS)
        .tags([TAG])
        .as_dropdown(True)
        .keep_time(True)
        .include_vars(False)
        .target_blank(False)
    )


def base_dashboard(
    title: str, dashboard_uid: str, description: str, tags: list[str]
) -> dash.Dashboard:
    """Settings every generated dashboard shares: time range, refresh, shared crosshair."""
    return (
        dash.Dashboard(title)
        .uid(dashboard_uid)
        .description(description)
        .tags([TAG, *tags])
        .editable()
        .timezone("browser")
        .time("now-24h", "now")
        .refresh("1m")
        # the crosshair follows the mouse in every panel: normal-time and on-sale panels
        # sit side by side and are read at the same instant
        .tooltip(model.DashboardCursorSync.CROSSHAIR)
        .link(dashboard_links())
    )
