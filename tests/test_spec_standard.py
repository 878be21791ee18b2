"""OpenSLO v1 and Sloth prometheus/v1 specs read as they are by every command that takes
--spec, per-mode objectives from the documented annotation (or one for both), converted specs
round-tripping through `slo validate`, and mistakes placed in the original file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from onsale_obs.cli import app
from onsale_obs.exceptions import SpecError
from onsale_obs.slo import AvailabilitySLI, PromQLSLI, Selector, load_spec
from onsale_obs.slo._load import spec_from_documents
from onsale_obs.slo._standard import good_from_bad, native_sli, selector_of
from onsale_obs.yamlfile import Located
from tests.file_edits import any_values, paths, replace

ROOT = Path(__file__).resolve().parent.parent
OPENSLO = ROOT / "examples" / "specs" / "openslo.yaml"
SLOTH = ROOT / "examples" / "specs" / "sloth.yaml"


def test_openslo_slos_with_referenced_and_inline_slis_and_alert_policies() -> None:
    spec = load_spec(OPENSLO)
    checkout, inventory = spec.slos
    assert checkout.name == "checkout-availability"
    assert checkout.service == "checkout"
    assert checkout.objectives == {"normal": 0.999, "onsale": 0.9999}  # target + annotation
    # onsale_requests_total by route with bad = total + code="5xx": the middleware's own
    # availability SLI, which access logs count as well as Prometheus
    assert checkout.sli == AvailabilitySLI(
        Selector("checkout", routes=("/events/{event_id}/checkout",)), frozenset({"5xx"})
    )
    assert checkout.window == 30 * 86400
    assert not checkout.calendar_month
    # the AlertPolicy's burn-rate conditions replace the default rules, per mode by severity
    onsale = {r.name: r for r in checkout.policy["onsale"]}
    normal = {r.name: r for r in checkout.policy["normal"]}
    assert set(onsale) == set(normal) == {"fast-burn", "slow-burn"}
    fast = onsale["fast-burn"]
    assert (fast.long, fast.short, fast.burn_rate, fast.priority) == (3600, 300, 14.4, "P1")
    assert normal["fast-burn"].priority == "P3"  # a page on sale, not at night in normal time
    assert (onsale["slow-burn"].priority, normal["slow-burn"].priority) == ("P2", "P4")
    assert (onsale["slow-burn"].long, onsale["slow-burn"].short) == (3 * 86400, 6 * 3600)
    # rate() of a selector inside sum(); targetPercent; a calendar month; no annotation
    assert inventory.sli == AvailabilitySLI(Selector("inventory"), frozenset({"5xx"}))
    assert inventory.objectives == {"normal": 0.995, "onsale": 0.995}
    assert inventory.calendar_month


def test_sloth_events_slis_objectives_and_the_label_for_the_onsale_objective() -> None:
    checkout, gateway, payments = load_spec(SLOTH).slos
    assert (checkout.name, checkout.service) == ("checkout-availability", "checkout")
    assert checkout.objectives == {"normal": 0.999, "onsale": 0.9999}
    assert checkout.sli == AvailabilitySLI(Selector("checkout"), frozenset({"5xx"}))
    assert checkout.runbook == "https://wiki.example.com/slo/checkout-availability"
    assert gateway.objectives == {"normal": 0.995, "onsale": 0.995}
    assert gateway.sli == AvailabilitySLI(Selector("checkout"), frozenset({"4xx", "5xx"}))
    assert checkout.window == 30 * 86400
    # any other counter: a promql SLI, good = the error query's extra matcher negated
    assert payments.sli == PromQLSLI(
        good='payments_total{outcome!="failed"}', total="payments_total"
    )


@pytest.mark.parametrize(
    ("good", "total", "expected"),
    [
        ('onsale_requests_total{service="s",code!~"5xx|4xx"}', 'onsale_requests_total{service="s"}',
         {"type": "availability", "bad_codes": ["4xx", "5xx"]}),
        ('onsale_requests_total{service="s",code=~"2xx|3xx"}', 'onsale_requests_total{service="s"}',
         {"type": "availability", "bad_codes": ["1xx", "4xx", "5xx"]}),
        ('onsale_requests_total{service="s",method=~"POST|PUT",route=~"/a\\\\.b|/c",code!="5xx"}',
         'onsale_requests_total{service="s",method=~"POST|PUT",route=~"/a\\\\.b|/c"}',
         {"type": "availability", "methods": ["POST", "PUT"], "routes": ["/a.b", "/c"],
          "bad_codes": ["5xx"]}),
        # not the middleware's classes, another service, a mode matcher, a real regex: promql
        ('onsale_requests_total{service="s",code=~"5.."}', 'onsale_requests_total{service="s"}', None),
        ('onsale_requests_total{service="t",code!="5xx"}', 'onsale_requests_total{service="t"}', None),
        ('onsale_requests_total{service="s",mode="onsale",code!="5xx"}',
         'onsale_requests_total{service="s",mode="onsale"}', None),
        ('onsale_requests_total{service="s",route=~"/a.*",code!="5xx"}',
         'onsale_requests_total{service="s",route=~"/a.*"}', None),
    ],
)  # fmt: skip
def test_the_middlewares_counters_become_availability_slis(
    good: str, total: str, expected: dict[str, Any] | None
) -> None:
    got = native_sli(good, total, "s")
    assert got == (expected or {"type": "promql", "good": good, "total": total})


@pytest.mark.parametrize("path", [OPENSLO, SLOTH])
def test_converted_specs_round_trip_through_validate(tmp_path: Path, path: Path) -> None:
    """`slo validate --native` prints a native spec that validates and loads the same SLOs."""
    runner = CliRunner()
    converted = runner.invoke(app, ["slo", "validate", str(path), "--native"])
    assert converted.exit_code == 0, converted.output
    native = tmp_path / "native.yaml"
    native.write_text(converted.stdout)
    assert yaml.safe_load(native.read_text())["slos"]
    again = runner.invoke(app, ["slo", "validate", str(native)])
    assert again.exit_code == 0, again.output
    assert "valid spec, " in again.stderr
    assert load_spec(native).slos == load_spec(path).slos


def test_every_command_with_spec_reads_them(tmp_path: Path) -> None:
    for path in (OPENSLO, SLOTH):
        out = tmp_path / path.stem
        result = CliRunner().invoke(
            app, ["dashboards", "render", "--spec", str(path), "--out", str(out)]
        )
        assert result.exit_code == 0, result.output
        assert list(out.glob("*.json"))


@pytest.mark.parametrize(
    ("text", "where", "words"),
    [
        (  # Sloth: an error query that is not the total with one more matcher
            'version: "prometheus/v1"\nservice: s\nslos:\n  - name: a\n    objective: 99.9\n'
            "    sli:\n      events:\n"
            "        error_query: sum(rate(errors_total[{{.window}}]))\n"
            "        total_query: sum(rate(requests_total[{{.window}}]))\n",
            ":8:22, field 'slos.0.sli.events.error_query'",
            "one more label matcher",
        ),
        (  # Sloth: a raw SLI cannot be split by mode
            'version: "prometheus/v1"\nservice: s\nslos:\n  - name: a\n    objective: 99.9\n'
            "    sli:\n      raw:\n        error_ratio_query: x\n",
            ":7:7, field 'slos.0.sli'",
            "expected an 'events' SLI",
        ),
        (  # Sloth: an objective out of range
            'version: "prometheus/v1"\nservice: s\nslos:\n  - name: a\n    objective: 100\n'
            "    sli: {events: {error_query: 'x{a=\"1\"}', total_query: x}}\n",
            ":5:16, field 'slos.0.objective'",
            "expected a percent",
        ),
        (  # OpenSLO: a reference to an SLI that is not in the file
            "apiVersion: openslo/v1\nkind: SLO\nmetadata: {name: a}\nspec:\n  service: s\n"
            "  indicatorRef: nope\n  objectives: [{target: 0.99}]\n",
            ":6:17, field 'spec.indicatorRef'",
            "no SLI called 'nope'",
        ),
        (  # OpenSLO: Timeslices budgeting
            "apiVersion: openslo/v1\nkind: SLO\nmetadata: {name: a}\nspec:\n  service: s\n"
            "  budgetingMethod: Timeslices\n  indicator:\n    metadata: {name: i}\n"
            "    spec:\n      ratioMetric:\n"
            "        good: {metricSource: {type: Prometheus, spec: {query: 'x{a=\"1\"}'}}}\n"
            "        total: {metricSource: {type: Prometheus, spec: {query: x}}}\n"
            "  objectives: [{target: 0.99}]\n",
            ":6:20, field 'spec.budgetingMethod'",
            "expected Occurrences",
        ),
        (  # OpenSLO: a query that is not a counter
            "apiVersion: openslo/v1\nkind: SLO\nmetadata: {name: a}\nspec:\n  service: s\n"
            "  indicator:\n    metadata: {name: i}\n    spec:\n      ratioMetric:\n"
            "        good: {metricSource: {type: Prometheus, spec: {query: 'histogram_quantile(0.9, x)'}}}\n"
            "        total: {metricSource: {type: Prometheus, spec: {query: x}}}\n"
            "  objectives: [{target: 0.99}]\n",
            ":10:63, field 'spec.indicator.spec.ratioMetric.good.metricSource.spec.query'",
            "expected a counter",
        ),
        (  # OpenSLO: an older version
            "apiVersion: openslo/v1alpha\nkind: SLO\nmetadata: {name: a}\n",
            ":1:13, field 'apiVersion'",
            "only v1 is read",
        ),
        (  # OpenSLO: a bad annotation for the on-sale objective
            "apiVersion: openslo/v1\nkind: SLO\nmetadata:\n  name: a\n  annotations:\n"
            "    onsale-obs/objective-onsale: lots\nspec:\n  service: s\n  indicator:\n"
            "    metadata: {name: i}\n    spec:\n      ratioMetric:\n"
            "        good: {metricSource: {type: Prometheus, spec: {query: 'x{a=\"1\"}'}}}\n"
            "        total: {metricSource: {type: Prometheus, spec: {query: x}}}\n"
            "  objectives: [{target: 0.99}]\n",
            ":6:34, field 'metadata.annotations.onsale-obs/objective-onsale'",
            "expected a percent",
        ),
    ],
)  # fmt: skip
def test_mistakes_are_placed_in_the_original_file(
    tmp_path: Path, text: str, where: str, words: str
) -> None:
    path = tmp_path / "spec.yaml"
    path.write_text(text)
    with pytest.raises(SpecError) as caught:
        load_spec(path)
    message = str(caught.value)
    assert f"{path}{where}" in message, message
    assert words in message, message
    result = CliRunner().invoke(app, ["slo", "validate", str(path)])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output


def test_native_errors_of_a_converted_spec_point_into_the_original(tmp_path: Path) -> None:
    """Two SLOs of the same name: the native check runs, the field is the OpenSLO one."""
    one = OPENSLO.read_text().split("---\n")[2]  # the checkout SLO, with its references
    text = OPENSLO.read_text() + "---\n" + one
    path = tmp_path / "twice.yaml"
    path.write_text(text)
    with pytest.raises(SpecError, match="two SLOs are called 'checkout-availability'"):
        load_spec(path)


def test_selectors_are_read_from_counter_queries_only() -> None:
    assert selector_of('x_total{a="1"}') == 'x_total{a="1"}'
    assert selector_of("sum(rate(x_total{a='1'}[5m]))") is None  # PromQL needs double quotes
    assert selector_of('sum(rate(x_total{a="1"}[{{.window}}]))') == 'x_total{a="1"}'
    assert selector_of('sum by (a) (increase(x_total{a="1"}[1h]))') == 'x_total{a="1"}'
    assert selector_of('rate(x_total{a="1"}[5m])') == 'x_total{a="1"}'
    assert selector_of('sum(rate(x_total{a="1"}[5m])') is None  # unbalanced
    assert selector_of("sum(rate(a[5m])) / sum(rate(b[5m]))") is None
    assert selector_of(3) is None


def test_good_is_the_bad_matcher_negated_only_when_that_is_exact() -> None:
    assert good_from_bad('r{s="a",code=~"5.."}', 'r{s="a"}') == 'r{s="a",code!~"5.."}'
    assert good_from_bad('r{s="a",code!="2xx"}', 'r{s="a"}') == 'r{s="a",code="2xx"}'
    assert good_from_bad('e{s="a"}', 'r{s="a"}') is None  # another metric
    assert good_from_bad('r{s="a",c="1",d="2"}', 'r{s="a"}') is None  # not(c and d): no selector
    assert good_from_bad('r{s="b",c="1"}', 'r{s="a"}') is None  # not a subset


_VALUES = any_values("1M", "30d", "Prometheus", "burnrate", 'x{a="1"}', "SLI", "{{.window}}")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_any_value_anywhere_in_a_standard_spec_is_a_spec_error_never_a_crash(
    data: st.DataObject,
) -> None:
    """Replace any part of the OpenSLO or Sloth example by anything YAML can hold: the result
    loads or is a SpecError naming the file; nothing else escapes."""
    source = data.draw(st.sampled_from([OPENSLO, SLOTH]))
    docs = list(yaml.safe_load_all(source.read_text()))
    index = data.draw(st.integers(0, len(docs) - 1))
    path = data.draw(st.sampled_from(paths(docs[index])))
    docs[index] = replace(docs[index], path, data.draw(_VALUES))
    problems: tuple[SpecError | Any, ...] = ()
    try:
        spec_from_documents([Located(d) for d in docs], file="spec.yaml")
    except SpecError as exc:
        problems = exc.problems
    assert all(p.file == "spec.yaml" and p.detail for p in problems)
