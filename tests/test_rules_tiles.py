"""Long windows from tiles: the recorded 6h, 1d, 3d and 30d increases equal the exact increase
of the raw counters, through promtool, over days of data with a counter reset.

The windows over an hour are sums of recorded hour, six-hour and day tiles (see
``onsale_obs/generate/_rules.py``). Samples every 10 minutes and evaluations every 20 land on
the tile boundaries, so ``increase()`` is exact on every tile and the sums must equal the
counts written here, to the request, at every moment checked: before a day has passed (the
tiles behind are missing and count 0), across the reset, and days later.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from onsale_obs.generate._rules import DAY, HOUR, render_rules, tile_terms, tiled
from onsale_obs.generate._yaml import dump
from onsale_obs.slo import spec_from_data
from onsale_obs.testing import require_binary

STEP = 600  # seconds between samples
HOURS = 80  # of data
LABELS = 'service="pay",route="/pay",method="POST",mode="normal"'
SLO_LABELS = '{mode="normal",service="pay",slo="pay"}'
SPEC = spec_from_data(
    {
        "slos": [
            {
                "name": "pay",
                "service": "pay",
                "sli": {"type": "availability", "routes": ["/pay"], "methods": ["POST"]},
                "objectives": {"normal": 99.9, "onsale": 99.99},
            }
        ]
    }
)


def increments(code: str) -> list[int]:
    """Requests of ``code`` in each 10-minute step (index 0 is the first sample, 0)."""
    out = [0]
    for i in range(1, HOURS * 3600 // STEP + 1):
        out.append((i * 7) % 13 + 1 if code == "2xx" else (i * 5) % 3)
    return out


def values(code: str) -> list[int]:
    """The counter's samples; it restarts (a deploy) at hour 30, so the sample there is just
    the requests of that step."""
    total, out = 0, []
    for i, inc in enumerate(increments(code)):
        total = inc if i * STEP == 30 * 3600 else total + inc
        out.append(total)
    return out


def in_window(code: str, at: float, window: float) -> int:
    """The exact count of ``code`` requests in (at - window, at]."""
    return sum(
        inc for i, inc in enumerate(increments(code)) if at - window < i * STEP <= at and i > 0
    )


def test_tiles_decompose_windows_into_whole_tiles_back_to_back() -> None:
    sizes = {"1h": HOUR, "6h": 6 * HOUR, "1d": DAY}
    for hours in range(2, 24 * 40):
        window = hours * HOUR
        assert tiled(window)
        terms = tile_terms(window)
        covered, end = 0.0, 0.0
        for tile, offset in terms:
            assert offset == end, (hours, terms)  # each tile starts where the last ended
            end += sizes[tile]
            covered += sizes[tile]
        assert covered == window
    assert not tiled(HOUR)
    assert not tiled(90 * 60)
    assert len(tile_terms(30 * DAY)) == 30
    assert len(tile_terms(DAY)) == 4


@pytest.mark.parametrize("hour", [5, 23, 29, 31, 50, 73, 80])
def test_tiled_windows_equal_the_exact_increase(tmp_path: Path, hour: int) -> None:
    binary = require_binary("promtool", "prometheus")
    (tmp_path / "rules.yml").write_text(dump(render_rules(SPEC)))
    at = hour * 3600.0
    checks: list[dict[str, Any]] = []
    for window, name in ((6 * HOUR, "6h"), (DAY, "1d"), (3 * DAY, "3d"), (30 * DAY, "30d")):
        for record, code in (("sli_events", None), ("sli_bad", "5xx")):
            count = (
                in_window("2xx", at, window) + in_window("5xx", at, window)
                if code is None
                else in_window("5xx", at, window)
            )
            checks.append(
                {
                    "expr": f"slo:{record}:increase{name}",
                    "eval_time": f"{hour}h",
                    "exp_samples": [
                        {"labels": f"slo:{record}:increase{name}{SLO_LABELS}", "value": count}
                    ],
                }
            )
    series = [
        {
            "series": f'onsale_requests_total{{{LABELS},code="{code}"}}',
            "values": " ".join(str(v) for v in values(code)),
        }
        for code in ("2xx", "5xx")
    ]
    suite = {
        "rule_files": ["rules.yml"],
        "evaluation_interval": "20m",
        "tests": [{"interval": "10m", "input_series": series, "promql_expr_test": checks}],
    }
    (tmp_path / "tests.yml").write_text(dump(suite))
    done = subprocess.run(
        [binary, "test", "rules", "tests.yml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
