"""The retrospective's minutes from both sources: the access logs and a real Prometheus
serving the same planted traffic show the same burst at the same minutes."""

from __future__ import annotations

from pathlib import Path

import pytest

from onsale_obs.modes import OnSaleWindow
from onsale_obs.slo import load_spec
from onsale_obs.slo._logs import LogSource
from onsale_obs.slo._prom_client import PrometheusClient
from onsale_obs.slo._retro import MINUTE, from_logs, from_prometheus, spans_of
from onsale_obs.slo._run import run_report
from onsale_obs.testing_prometheus import PrometheusServer
from tests.slo_traffic import AT as PLANTED_AT
from tests.slo_traffic import Traffic, planted_bursts
from tests.test_slo_html import PLANTED_SPEC


@pytest.fixture(scope="module")
def burst_spans(
    planted_traffic: Traffic, tmp_path_factory: pytest.TempPathFactory
) -> tuple[list[Path], list[tuple[OnSaleWindow, float, float, float]]]:
    folder = tmp_path_factory.mktemp("retro-sources")
    spec_path = folder / "slo.yaml"
    spec_path.write_text(PLANTED_SPEC)
    logs = planted_traffic.write_access_logs(folder / "logs")
    spec = load_spec(spec_path)
    report = run_report(spec, LogSource(logs), PLANTED_AT)
    burst = next(b for b in planted_bursts(PLANTED_AT) if b.service == "checkout")
    spans = [s for s in spans_of(report, spec.grace) if s[0].start <= burst.start < s[2]]
    assert spans, "no on-sale holds the planted checkout burst"
    return logs, spans


def test_both_sources_show_the_burst_in_the_same_minutes(
    planted_prometheus: PrometheusServer,
    burst_spans: tuple[list[Path], list[tuple[OnSaleWindow, float, float, float]]],
    tmp_path: Path,
) -> None:
    """Errors per minute of checkout, from logs (exact) and from Prometheus (rate over 3m):
    both non-zero through the burst and far above the minutes before it; request totals agree within
    a tenth."""
    spec_path = tmp_path / "slo.yaml"
    spec_path.write_text(PLANTED_SPEC)
    spec = load_spec(spec_path)
    logs, spans = burst_spans
    burst = next(b for b in planted_bursts(PLANTED_AT) if b.service == "checkout")
    (from_log,) = from_logs(logs, spec.slos, spans, spec.grace)
    with PrometheusClient(planted_prometheus.url) as client:
        (from_prom,) = from_prometheus(client, spec.slos, spans, spec.grace)
    inside = [m for m in from_log.minutes() if burst.start + MINUTE <= m < burst.end - MINUTE]
    assert inside
    for source in (from_log, from_prom):
        errors = source.services["checkout"].errors
        assert all(errors.get(m, 0) > 0 for m in inside), (source.origin, errors)
        early = [m for m in source.minutes() if m < burst.start - 5 * MINUTE]
        assert early
        before = sum(errors.get(m, 0) for m in early) / len(early)
        during = sum(errors.get(m, 0) for m in inside) / len(inside)
        assert during > 5 * before, (source.origin, before, during)
        bad = source.slos["checkout-availability"].bad
        assert sum(bad.get(m, 0) for m in inside) > 0, source.origin
    whole = [m for m in from_log.minutes() if m + 3 * MINUTE <= from_log.onsale_end]
    logs_total = sum(from_log.services["checkout"].requests.get(m, 0) for m in whole)
    prom_total = sum(from_prom.services["checkout"].requests.get(m, 0) for m in whole)
    assert logs_total > 0
    assert abs(prom_total - logs_total) <= 0.1 * logs_total, (prom_total, logs_total)
