"""How long ``onsale-obs`` takes to start, next to a bare Python measured in the same run.

Every command is run ``--runs`` times as a fresh process, interleaved with the baselines
(``python -c pass`` and ``python -c "import typer"``) so machine noise hits both alike; the
table gives the fastest and the median wall time of each, and the fastest minus the fastest
``python -c pass`` (what onsale-obs itself adds). Then ``python -X importtime`` names the
imports that cost most for a few commands (cumulative time, the modules a command pulls in
itself, not their children).

    .venv/bin/python benchmarks/cli_startup.py               # 7 runs each
    .venv/bin/python benchmarks/cli_startup.py --runs 15 --json out.json

The "real" commands run on a throw-away folder: a key pair, a sqlite store with one on-sale
(``mode get``), and a one-line spec with a small access log (``slo report``).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

PYTHON = sys.executable
CLI = [PYTHON, "-c", "from onsale_obs.cli import main; main()"]

SPEC = """\
slos:
  - name: checkout-availability
    service: checkout
    sli: {type: availability}
    objectives: {normal: 99.9, onsale: 99.99}
"""


def prepare(folder: Path) -> dict[str, list[str]]:
    """Keys, a store with one on-sale, a spec and a log; the commands to time on them."""
    keys = folder / "keys"
    db = f"sqlite:///{folder / 'modes.db'}"
    signing, verify = keys / "onsale-signing.pem", keys / "onsale-verify.pem"
    env = {**os.environ, "COLUMNS": "120"}
    subprocess.run(
        [*CLI, "keys", "generate", "--out", str(keys)],
        check=True, env=env, stdout=subprocess.DEVNULL,
    )  # fmt: skip
    subprocess.run(
        [*CLI, "mode", "set", "onsale", "--scope", "event:final", "--for", "2h",
         "--backend", db, "--signing-key", str(signing)],
        check=True, env=env, stdout=subprocess.DEVNULL,
    )  # fmt: skip
    spec = folder / "slo.yaml"
    spec.write_text(SPEC)
    log = folder / "access.log"
    now = time.time()
    with log.open("w") as out:
        for i in range(200):
            out.write(
                json.dumps(
                    {
                        "ts": now - 3600 + i * 10,
                        "service": "checkout",
                        "route": "/buy",
                        "method": "POST",
                        "status": 500 if i % 50 == 0 else 200,
                        "duration_s": 0.05,
                        "mode": "normal",
                    }
                )
                + "\n"
            )
    return {
        "onsale-obs --help": ["--help"],
        "onsale-obs --version": ["--version"],
        "onsale-obs mode get --help": ["mode", "get", "--help"],
        "onsale-obs slo report --help": ["slo", "report", "--help"],
        "onsale-obs mode get (sqlite, verified)": [
            "mode", "get", "--backend", db, "--verify-key", str(verify), "--format", "json",
        ],
        "onsale-obs slo report (200 log lines)": [
            "slo", "report", "--spec", str(spec), "--logs", str(log), "--window", "1d",
            "--format", "json",
        ],
    }  # fmt: skip


def wall(argv: Sequence[str], tree: str | None = None) -> float:
    env = {**os.environ, "COLUMNS": "120"}
    if tree is not None:  # another copy of the package (``--also``) ahead of this one
        env["PYTHONPATH"] = tree
    start = time.perf_counter()
    subprocess.run(
        argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, cwd=tree
    )  # in DIR, so that the current directory's package does not come first
    return time.perf_counter() - start


def importtime(args: Sequence[str], top: int) -> list[tuple[float, str]]:
    """The ``top`` direct imports (of the command, not of its imports) by cumulative time, ms."""
    done = subprocess.run(
        [PYTHON, "-X", "importtime", *CLI[1:], *args],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "120"},
    )
    rows = []
    for line in done.stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        _, cumulative, name = line[len("import time:") :].split("|")
        depth = (len(name) - len(name.lstrip())) // 2
        if depth <= 1:  # what the command (or the interpreter) imports itself
            rows.append((int(cumulative) / 1000, name.strip()))
    return sorted(rows, reverse=True)[:top]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=7, help="fresh processes per command")
    parser.add_argument("--top", type=int, default=8, help="imports listed per command")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument(
        "--also",
        metavar="DIR",
        help="also time the commands with the onsale_obs package in DIR (e.g. an older "
        "version: git archive REV onsale_obs | tar -x -C DIR), interleaved in the same run",
    )
    options = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="onsale-obs-startup-") as tmp:
        commands = prepare(Path(tmp))
        cases: dict[str, tuple[list[str], str | None]] = {
            "python -c pass (baseline)": ([PYTHON, "-c", "pass"], None),
            'python -c "import typer" (baseline)': ([PYTHON, "-c", "import typer"], None),
            **{label: ([*CLI, *args], None) for label, args in commands.items()},
        }
        if options.also:
            other = str(Path(options.also).resolve())
            for label, args in commands.items():
                cases[f"{label} [--also]"] = ([*CLI, *args], other)
        times: dict[str, list[float]] = {label: [] for label in cases}
        for _ in range(options.runs):
            for label, (argv, tree) in cases.items():
                times[label].append(wall(argv, tree))
        offenders = {
            label: importtime(commands[label], options.top)
            for label in (
                "onsale-obs --help",
                "onsale-obs mode get --help",
                "onsale-obs slo report --help",
                "onsale-obs mode get (sqlite, verified)",
            )
        }

    base = min(times["python -c pass (baseline)"])
    load = os.getloadavg()[0]
    print(f"CLI start-up, {options.runs} runs each, interleaved; load average {load:.2f}")
    if options.also:
        print(f"[--also]: the same command with the package in {options.also}")
    print(f"{'command':<51} {'fastest':>8} {'median':>8} {'minus python':>13}")
    for label, samples in times.items():
        fastest, median = min(samples), statistics.median(samples)
        print(f"{label:<51} {fastest:>7.3f}s {median:>7.3f}s {fastest - base:>12.3f}s")
    for label, rows in offenders.items():
        print(f"\npython -X importtime, {label}: top imports by cumulative time")
        for ms, name in rows:
            print(f"  {ms:>8.1f} ms  {name}")
    if options.json:
        options.json.write_text(
            json.dumps(
                {
                    "runs": options.runs,
                    "load_average": load,
                    "seconds": {
                        label: {"fastest": min(s), "median": statistics.median(s), "all": s}
                        for label, s in times.items()
                    },
                    "importtime_ms": {k: [[ms, n] for ms, n in v] for k, v in offenders.items()},
                },
                indent=2,
            )
        )


if __name__ == "__main__":
    main()
