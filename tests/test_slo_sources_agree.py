"""The same planted traffic through both sources: ``slo report --logs`` and ``--prometheus``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from onsale_obs.cli import app
from onsale_obs.modes import Broadcaster, Signer, SqliteBackend, generate_key_pair
from onsale_obs.modes._model import iso
from onsale_obs.slo import load_spec, run_report
from onsale_obs.slo._logs import LogSource
from onsale_obs.slo._prom_client import PrometheusClient
from onsale_obs.slo._prometheus import PrometheusSource
from onsale_obs.testing import FakeClock
from onsale_obs.testing_prometheus import PrometheusServer
from tests.slo_traffic import AT, GRACE, Traffic

SPEC: dict[str, Any] = {
    "onsale_grace": f"{int(GRACE)}s",
    "slos": [
        {
            "name": "checkout-availability",
            "service": "checkout",
            "sli": {
                "type": "availability",
                "routes": ["/events/{event_id}/checkout"],
                "methods": ["POST"],
            },
            "objectives": {"normal": 99.9, "onsale": 99.99},
        },
        {
            "name": "checkout-latency",
            "service": "checkout",
            "sli": {"type": "latency", "threshold": {"normal": "250ms", "onsale": "1s"}},
            "objectives": {"normal": 99, "onsale": 99},
        },
        {
            "name": "inventory-availability",
            "service": "inventory",
            "sli": {"type": "availability"},
            "objectives": {"normal": 99.5, "onsale": 99.9},
        },
    ],
}


@pytest.fixture(scope="module")
def spec_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("spec") / "slo.yaml"
    path.write_text(yaml.safe_dump(SPEC))
    return path


@pytest.fixture(scope="module")
def logs(planted_traffic: Traffic, tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    return planted_traffic.write_access_logs(tmp_path_factory.mktemp("logs"))


@pytest.fixture(scope="module")
def history(planted_traffic: Traffic, tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """The planted on-sales published, at their times, into a sqlite mode store."""
    folder = tmp_path_factory.mktemp("history")
    keys = generate_key_pair(folder)
    signer, verify = Signer.from_file(keys.signing_key), keys.verify_key
    changes = sorted(
        [(w.start, w.scope, "onsale") for w in planted_traffic.windows]
        + [(w.end, w.scope, "normal") for w in planted_traffic.windows if w.end is not None]
    )
    backend = SqliteBackend(str(folder / "modes.db"))
    clock = FakeClock(changes[0][0])
    broadcaster = Broadcaster(backend, signer, clock=clock)
    for when, scope, mode in changes:
        clock.advance(when - clock())
        broadcaster.set(scope, mode, reason="planted")
    backend.close()
    return ["--backend", f"sqlite:///{folder / 'modes.db'}", "--verify-key", str(verify)]


def cli_report(*args: str | Path) -> dict[str, Any]:
    result = CliRunner().invoke(
        app, ["slo", "report", "--at", str(iso(AT)), "--format", "json", *map(str, args)]
    )
    assert result.exit_code in (0, 1), result.output
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def test_both_sources_agree_on_every_count(
    spec_file: Path,
    logs: list[Path],
    planted_prometheus: PrometheusServer,
    history: list[str],
) -> None:
    from_logs = cli_report("--spec", spec_file, *history, *[a for p in logs for a in ("--logs", p)])
    from_prom = cli_report("--spec", spec_file, *history, "--prometheus", planted_prometheus.url)
    assert from_logs["skipped"] == {}
    for a, b in zip(from_logs["slos"], from_prom["slos"], strict=True):
        assert a["name"] == b["name"]
        on_a, on_b = a["modes"]["onsale"], b["modes"]["onsale"]
        assert (on_a["total"], on_a["bad"]) == (on_b["total"], on_b["bad"]), a["name"]
        assert isinstance(on_b["total"], int)  # exact counts, not estimates
        assert on_a["sli"] == on_b["sli"]
        # normal time too: last value - value at the start, per series (no extrapolation)
        normal_a, normal_b = a["modes"]["normal"], b["modes"]["normal"]
        assert (normal_a["total"], normal_a["bad"]) == (normal_b["total"], normal_b["bad"]), a[
            "name"
        ]
        assert normal_a["sli"] == normal_b["sli"]
        windows_a = [(o["scope"], o["start"], o["end"], o["total"], o["bad"]) for o in a["onsales"]]
        windows_b = [(o["scope"], o["start"], o["end"], o["total"], o["bad"]) for o in b["onsales"]]
        assert windows_a == windows_b, a["name"]
        assert windows_a  # the planted on-sales were found in both


def test_the_log_report_is_the_planted_truth(
    spec_file: Path, logs: list[Path], planted_traffic: Traffic
) -> None:
    spec = load_spec(spec_file)
    report = run_report(spec, LogSource(logs), AT, onsale_windows=planted_traffic.windows)
    checkout = report.slos[0]
    for mode in ("normal", "onsale"):
        truth = planted_traffic.truth(
            start=AT - 30 * 86_400, end=AT, mode=mode, service="checkout",
            routes=["/events/{event_id}/checkout"], methods=["POST"],
        )  # fmt: skip
        result = checkout.modes[mode]
        assert (result.total, result.bad) == (truth.total, truth.bad)
        assert result.sli == 1 - truth.bad / truth.total


def test_prometheus_onsale_sli_is_the_truth_to_1e6(
    spec_file: Path, planted_prometheus: PrometheusServer, planted_traffic: Traffic
) -> None:
    spec = load_spec(spec_file)
    source = PrometheusSource(PrometheusClient(planted_prometheus.url))
    report = run_report(spec, source, AT, onsale_windows=planted_traffic.windows)
    latency = report.slos[1]
    truth = planted_traffic.truth(
        start=AT - 30 * 86_400, end=AT, mode="onsale", service="checkout", threshold=1.0
    )
    onsale = latency.modes["onsale"]
    assert (onsale.total, onsale.bad) == (truth.total, truth.bad)
    assert onsale.sli is not None
    assert abs(onsale.sli - (1 - truth.bad / truth.total)) < 1e-6
