"""A newcomer's first minutes: a fresh clone and the README's first command, nothing else.

(The README's second command, ``./scripts/test``, is what CI runs on a fresh clone.)
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_a_fresh_clone_runs_the_quick_start(tmp_path: Path) -> None:
    git = shutil.which("git")
    if git is None or not (ROOT / ".git").exists():
        pytest.skip("needs git and a git checkout of onsale-obs")
    clone = tmp_path / "onsale-obs"
    subprocess.run([git, "clone", "--quiet", str(ROOT), str(clone)], check=True, timeout=120)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ONSALE_OBS_", "VIRTUAL_ENV"))}
    env["COLUMNS"] = "200"
    done = subprocess.run(
        ["./scripts/quickstart"],
        cwd=clone,
        env=env,
        capture_output=True,
        text=True,
        timeout=840,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    for expected in (
        "SLOs at",
        "on-sales",
        "alerts that fired",
        "exit-rate recommendations",
        "pager",
    ):
        assert expected in done.stdout, expected
    assert (clone / "onsale-obs-demo" / "report.html").exists()
    assert (clone / ".venv" / "bin" / "onsale-obs").exists()
