"""``onsale_obs.testing``: the helpers the suite (and users' suites) start real servers with."""

from __future__ import annotations

import pytest

from onsale_obs.testing import require_binary


def test_a_missing_server_fails_under_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    """With CI=true a missing binary is an error naming the Debian package, never a skip."""
    monkeypatch.setenv("CI", "true")
    with pytest.raises(RuntimeError, match="install the Debian package no-such-package"):
        require_binary("no-such-binary-onsale", "no-such-package")


def test_a_missing_server_skips_outside_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="no-such-binary-onsale not found"):
        require_binary("no-such-binary-onsale", "no-such-package")


def test_an_installed_server_is_found() -> None:
    path = require_binary("redis-server", "redis-server")
    assert path.endswith("redis-server")
