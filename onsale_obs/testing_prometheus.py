"""A real Prometheus for tests: backfill history with ``promtool``, then serve it on loopback.

``backfill`` turns OpenMetrics text (with timestamps) into TSDB blocks; ``PrometheusServer``
starts the ``prometheus`` binary (Debian package ``prometheus``) on a free loopback port over
that TSDB and stops it again. Blocks must exist before the server starts, so it loads them::

    backfill(text, tsdb)
    with PrometheusServer(tsdb_path=tsdb) as prom:
        PrometheusClient(prom.url).query("up", at)
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Final

from onsale_obs.testing import (
    find_binary,
    free_port,
    launch,
    log_tail,
    stop_process,
    wait_http_ready,
)

#: promtool aligns blocks to its block duration and parses the whole input once per block;
#: 4374h (about six months) puts a month of history in one or two blocks.
MAX_BLOCK_DURATION: Final = "4374h"
_CONFIG: Final = "global:\n  scrape_interval: 15s\n  evaluation_interval: 15s\nscrape_configs: []\n"


def backfill(
    openmetrics: str | Path,
    tsdb_path: str | Path,
    *,
    promtool: str = "promtool",
    max_block_duration: str = MAX_BLOCK_DURATION,
    timeout: float = 300.0,
) -> list[str]:
    """Write TSDB blocks for ``openmetrics`` (the text, or a file holding it) into ``tsdb_path``.

    Every sample needs a timestamp; ``# EOF`` is added when the text lacks it. Run this before
    the server starts. Returns the new block ids.
    """
    binary = find_binary(promtool)
    if binary is None:
        raise FileNotFoundError(f"{promtool} not found; install the Debian package prometheus.")
    target = Path(tsdb_path)
    target.mkdir(parents=True, exist_ok=True)
    before = _blocks(target)
    with tempfile.TemporaryDirectory(prefix="onsale-backfill-") as scratch:
        source = _input_file(openmetrics, Path(scratch))
        done = subprocess.run(
            [binary, "tsdb", "create-blocks-from", "openmetrics", "--quiet",
             f"--max-block-duration={max_block_duration}", str(source), str(target)],
            capture_output=True, text=True, timeout=timeout, check=False,
        )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(
            f"promtool could not backfill {source.name}: {(done.stderr or done.stdout).strip()}"
        )
    return sorted(_blocks(target) - before)


def _input_file(openmetrics: str | Path, scratch: Path) -> Path:
    """A file that ends with ``# EOF``, as promtool insists."""
    if isinstance(openmetrics, Path):
        with openmetrics.open("rb") as f:
            f.seek(max(0, openmetrics.stat().st_size - 64))
            tail = f.read().rstrip()
        if tail.endswith(b"# EOF"):
            return openmetrics
        copy = scratch / "input.om"
        shutil.copyfile(openmetrics, copy)
        with copy.open("a") as out:
            out.write("\n# EOF\n")
        return copy
    text = openmetrics.rstrip("\n")
    if not text.endswith("# EOF"):
        text += "\n# EOF"
    path = scratch / "input.om"
    path.write_text(text + "\n")
    return path


def _blocks(tsdb: Path) -> set[str]:
    return {p.name for p in tsdb.iterdir() if (p / "meta.json").exists()}


@dataclass
class PrometheusServer:
    """A real ``prometheus`` on 127.0.0.1 with its own config and TSDB folder.

    ``tsdb_path`` None makes a temporary folder (removed on stop); ``retention`` (``400d``)
    keeps backfilled history that is older than the default 15 days.
    """

    binary: str = "prometheus"
    port: int = field(default_factory=free_port)
    tsdb_path: Path | None = None
    retention: str | None = "400d"
    config: str = _CONFIG
    extra_args: tuple[str, ...] = ()
    process: subprocess.Popen[bytes] | None = None
    _scratch: Path | None = None
    _owned_tsdb: bool = False

    @property
    def url(self) -> str:
        """The HTTP API's base URL."""
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> PrometheusServer:
        """Start the server and wait until ``/-/ready`` answers 200."""
        path = find_binary(self.binary)
        if path is None:
            raise FileNotFoundError(
                f"{self.binary} not found; install the Debian package prometheus."
            )
        self._scratch = Path(tempfile.mkdtemp(prefix="onsale-prometheus-"))
        if self.tsdb_path is None:
            self.tsdb_path = self._scratch / "tsdb"
            self._owned_tsdb = True
        config = self._scratch / "prometheus.yml"
        config.write_text(self.config)
        args = [
            path,
            f"--config.file={config}",
            f"--storage.tsdb.path={self.tsdb_path}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            "--log.level=warn",
            *([f"--storage.tsdb.retention.time={self.retention}"] if self.retention else []),
            *self.extra_args,
        ]
        self.process = launch(args, self._scratch / "prometheus.log")
        try:
            wait_http_ready(f"{self.url}/-/ready", self.process, timeout, self._log)
        except BaseException:
            self.stop()
            raise
        return self

    @property
    def _log(self) -> Path | None:
        return None if self._scratch is None else self._scratch / "prometheus.log"

    def log_tail(self, lines: int = 20) -> str:
        """The last lines the server logged (for error messages)."""
        return log_tail(self._log, lines)

    def stop(self) -> None:
        """Stop the server (terminate, then kill) and remove the folders this object made."""
        stop_process(self.process)
        self.process = None
        if self._scratch is not None:
            shutil.rmtree(self._scratch, ignore_errors=True)
            self._scratch = None
        if self._owned_tsdb:
            self.tsdb_path = None
            self._owned_tsdb = False

    def __enter__(self) -> PrometheusServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
