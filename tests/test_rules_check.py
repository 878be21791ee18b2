"""The checks ``rules render`` runs before writing: promtool check and test, test groups
split over one promtool per core, and any failing shard refuses the output."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from onsale_obs.exceptions import BadInputError
from onsale_obs.generate._files import run_tools
from onsale_obs.generate._rules_files import check_rule_files, rule_files
from onsale_obs.generate._yaml import dump
from onsale_obs.slo import load_spec
from onsale_obs.testing import require_binary

SPEC = Path(__file__).resolve().parent.parent / "examples" / "ticketing" / "slo.yaml"


def staged(folder: Path) -> Path:
    require_binary("promtool", "prometheus")
    files = rule_files(load_spec(SPEC), folder)
    for path, text in files.items():
        path.write_text(text)
    return folder / "onsale-slo.rules.test.yml"


def test_good_files_pass_in_shards(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    staged(tmp_path)
    monkeypatch.setattr("os.cpu_count", lambda: 2)
    check_rule_files(tmp_path)
    shards = sorted(p.name for p in tmp_path.glob("shard-*"))
    assert shards == ["shard-0.onsale-slo.rules.test.yml", "shard-1.onsale-slo.rules.test.yml"]
    suite = yaml.safe_load((tmp_path / "onsale-slo.rules.test.yml").read_text())
    split = [yaml.safe_load((tmp_path / s).read_text())["tests"] for s in shards]
    assert [t["name"] for s in split for t in s] == [t["name"] for t in suite["tests"]]


@pytest.mark.parametrize("group", [0, 1])
def test_a_wrong_expectation_in_any_shard_refuses_the_output(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, group: int
) -> None:
    tests = staged(tmp_path)
    suite = yaml.safe_load(tests.read_text())
    check = next(t for t in suite["tests"][group]["alert_rule_test"] if t["exp_alerts"])
    check["exp_alerts"][0]["exp_labels"]["priority"] = "P9"
    tests.write_text(dump(suite))
    monkeypatch.setattr("os.cpu_count", lambda: 2)
    with pytest.raises(BadInputError, match="promtool test rules rejected") as caught:
        check_rule_files(tmp_path)
    assert check["alertname"] in str(caught.value)
    assert "nothing was written" in str(caught.value)


def test_a_broken_rule_file_is_reported_by_promtool_check(tmp_path: Path) -> None:
    staged(tmp_path)
    rules = tmp_path / "onsale-slo.rules.yml"
    rules.write_text(rules.read_text().replace("sum by (mode)", "sum by (mode", 1))
    with pytest.raises(BadInputError, match="promtool check rules rejected"):
        check_rule_files(tmp_path)


def test_run_tools_reports_every_failure_and_skips_missing_tools(tmp_path: Path) -> None:
    run_tools([(["no-such-checker-here"], "nothing")], cwd=tmp_path)  # not installed: skipped
    with pytest.raises(BadInputError) as caught:
        run_tools(
            [
                (["sh", "-c", "echo one; exit 1"], "first"),
                (["sh", "-c", "echo two; exit 3"], "second"),
                (["true"], "fine"),
            ],
            cwd=tmp_path,
        )
    message = str(caught.value)
    assert "first rejected the generated file:\none" in message
    assert "second rejected the generated file:\ntwo" in message
    assert "fine" not in message
