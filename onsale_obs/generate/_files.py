"""Writing generated files: checked before they replace anything, atomically, drift-checkable."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path

from onsale_obs.exceptions import BadInputError


def drifted(files: Mapping[Path, str]) -> list[Path]:
    """The files whose content on disk differs from ``files`` (missing ones included)."""
    out = []
    for path, text in files.items():
        try:
            same = path.read_text() == text
        except OSError:
            same = False
        if not same:
            out.append(path)
    return out


def write_checked(files: Mapping[Path, str], check: Callable[[Path], None] | None = None) -> None:
    """Write ``files`` to a temporary folder, run ``check`` on it, then move each into place.

    ``check`` gets the temporary folder (same file names) and raises to refuse the output, so
    an invalid file is never written out.
    """
    with tempfile.TemporaryDirectory(prefix="onsale-obs-") as tmp:
        staged = Path(tmp)
        for path, text in files.items():
            (staged / path.name).write_text(text)
        if check is not None:
            check(staged)
        for path, text in files.items():
            write_atomic(path, text)


def write_atomic(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` at once (readers never see half a file), mode 0644.

    Raises ``BadInputError`` naming the file when it cannot be written.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                out.write(text)
            os.chmod(name, 0o644)  # mkstemp makes 0600; Prometheus may run as another user
            os.replace(name, path)
        except BaseException:
            Path(name).unlink(missing_ok=True)
            raise
    except OSError as exc:
        raise BadInputError(
            f"cannot be written ({exc.strerror or exc}); expected a writable folder.",
            file=str(path),
        ) from None


def run_tool(args: list[str], what: str, *, cwd: Path | None = None) -> None:
    """Run a checker (promtool, amtool) if it is installed; its complaint becomes bad input."""
    if shutil.which(args[0]) is None:
        return
    try:
        result = subprocess.run(
            args, capture_output=True, text=True, cwd=cwd, timeout=120, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise BadInputError(f"{what} could not check the generated file ({exc}).") from None
    if result.returncode != 0:
        detail = (result.stdout + result.stderr).strip()
        raise BadInputError(
            f"{what} rejected the generated file, so nothing was written:\n{detail}"
        )


def run_tools(jobs: list[tuple[list[str], str]], *, cwd: Path | None = None) -> None:
    """Run several checkers at once (``(args, what)`` each, as ``run_tool``); every complaint
    is bad input. Checkers that are not installed are skipped."""
    started: list[tuple[subprocess.Popen[str], str]] = []
    problems: list[str] = []
    try:
        for args, what in jobs:
            if shutil.which(args[0]) is None:
                continue
            try:
                process = subprocess.Popen(
                    args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=cwd
                )
            except OSError as exc:
                problems.append(f"{what} could not check the generated file ({exc}).")
                continue
            started.append((process, what))
        for process, what in started:
            try:
                output, _ = process.communicate(timeout=120)
            except subprocess.TimeoutExpired:
                problems.append(f"{what} could not check the generated file (timed out).")
                continue
            if process.returncode != 0:
                problems.append(f"{what} rejected the generated file:\n{output.strip()}")
    finally:
        for process, _ in started:
            if process.poll() is None:
                process.kill()
                process.wait()
    if problems:
        raise BadInputError("\n".join(problems) + "\nSo nothing was written.")
