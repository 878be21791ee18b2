"""A Redis writer without the key cannot change, hide or roll back a mode, for any reader.

Every attack of issue 17 against a real redis-server (AOF on): a running subscriber, a freshly
started one, ``mode get`` and ``mode history`` must agree, and none may hold a state that the
publishers' last signed head does not vouch for. Raw writes go through a plain redis client,
as an attacker's would.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from typer.testing import CliRunner, Result

from onsale_obs.cli import app
from onsale_obs.exceptions import StoreIntegrityError
from onsale_obs.modes import (
    Broadcaster,
    ModeHistory,
    ModeSubscriber,
    Signer,
    Verifier,
    current_states,
    generate_key_pair,
    open_backend,
)
from onsale_obs.testing import ListLogger, RedisServer
from tests.test_modes_redis import quick_subscriber, wait_for

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def keys_on_disk(tmp_path: Path) -> tuple[Path, Path]:
    pair = generate_key_pair(tmp_path / "keys")
    return pair.signing_key, pair.verify_key


@pytest.fixture
def raw(redis_server: RedisServer) -> Iterator[Any]:
    """A plain client, as an attacker with access to Redis but not to the key has."""
    client = redis.Redis.from_url(redis_server.url)
    yield client
    client.close()


def invoke(*args: str | Path) -> Result:
    return CliRunner().invoke(app, [str(a) for a in args])


def mode_get(url: str, verify: Path) -> Result:
    return invoke("mode", "get", "--backend", url, "--verify-key", verify, "--format", "json")


def onsale_in(result: Result) -> set[str]:
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    return {s["scope"] for s in data["scopes"] if s["effective_mode"] == "onsale"}


def fresh(url: str, verifier: Verifier) -> ModeSubscriber:
    sub = ModeSubscriber(open_backend(url), verifier, registry=None)
    assert sub.sync()
    return sub


@pytest.mark.redis
@pytest.mark.parametrize(
    "junk",
    [
        {"scope": "event:final"},  # no msg
        {"msg": "hello"},  # no scope
        {"scope": b"event:\xff\xfefinal", "msg": b"\x00"},  # not UTF-8
    ],
)
def test_a_malformed_log_entry_freezes_nobody(
    redis_server: RedisServer,
    raw: Any,
    keys_on_disk: tuple[Path, Path],
    junk: dict[str, str | bytes],
) -> None:
    """Item 1: services follow the operator's next change past junk; watch/history/get agree."""
    signer, verify = Signer.from_file(keys_on_disk[0]), keys_on_disk[1]
    verifier = Verifier.from_files([verify])
    publisher = Broadcaster(open_backend(redis_server.url), signer)
    publisher.set("event:final", "onsale")
    running = quick_subscriber(redis_server.url, verifier).start()
    try:
        assert wait_for(lambda: running.mode_for("final") == "onsale")
        raw.xadd("onsale:log", junk, id="2-0")
        publisher.set("event:final", "normal", reason="sale over")
        assert wait_for(lambda: running.mode_for("final") == "normal")
        assert not running.stale
    finally:
        running.stop()
    assert fresh(redis_server.url, verifier).mode_for("final") == "normal"
    assert onsale_in(mode_get(redis_server.url, verify)) == set()
    history = invoke(
        "mode", "history", "--backend", redis_server.url, "--verify-key", verify, "--format", "json"
    )
    assert history.exit_code == 0, history.output
    modes = [t["mode"] for t in json.loads(history.stdout)["transitions"]]
    assert modes == ["onsale", "normal"]


@pytest.mark.redis
def test_snapshot_edits_fool_no_fresh_reader(
    redis_server: RedisServer, raw: Any, keys_on_disk: tuple[Path, Path]
) -> None:
    """Item 2: an old valid on-sale put into the hash, or an on-sale scope deleted from it."""
    signer, verify = Signer.from_file(keys_on_disk[0]), keys_on_disk[1]
    verifier = Verifier.from_files([verify])
    publisher = Broadcaster(open_backend(redis_server.url), signer)
    old = publisher.set("event:a", "onsale")
    old_message = raw.xrange("onsale:log")[0][1][b"msg"]
    publisher.set("event:a", "normal")
    publisher.set("event:b", "onsale")
    raw.hset("onsale:state", "event:a", b"1\n" + old_message)
    raw.hdel("onsale:state", "event:b")
    for reader in (
        fresh(redis_server.url, verifier).states(),
        current_states(open_backend(redis_server.url), verifier).states,
        publisher.current(),
    ):
        assert reader["event:a"].mode == "normal"
        assert reader["event:a"] != old
        assert reader["event:b"].mode == "onsale"
    assert onsale_in(mode_get(redis_server.url, verify)) == {"event:b"}


@pytest.mark.redis
@pytest.mark.parametrize("field", [b"event:z", b"event:\xff"])
def test_a_malformed_snapshot_entry_stops_no_new_service(
    redis_server: RedisServer, raw: Any, keys_on_disk: tuple[Path, Path], field: bytes
) -> None:
    """Item 3: ``HSET onsale:state event:z abc`` (or a non-UTF-8 field) and new services sync."""
    signer, verify = Signer.from_file(keys_on_disk[0]), keys_on_disk[1]
    verifier = Verifier.from_files([verify])
    Broadcaster(open_backend(redis_server.url), signer).set("event:final", "onsale")
    raw.hset("onsale:state", field, b"abc")
    sub = fresh(redis_server.url, verifier)
    assert sub.mode_for("final") == "onsale"
    assert not sub.stale
    assert onsale_in(mode_get(redis_server.url, verify)) == {"event:final"}


@pytest.mark.redis
def test_flushall_is_noticed_on_the_next_read_and_the_new_history_followed(
    redis_server: RedisServer, raw: Any, keys_on_disk: tuple[Path, Path]
) -> None:
    """Item 4: the connection does not drop, yet the running service notices within one read
    (poll 0.2 s), keeps its on-sale, and then follows publishes that restart at revision 1."""
    signer, verify = Signer.from_file(keys_on_disk[0]), keys_on_disk[1]
    verifier = Verifier.from_files([verify])
    publisher = Broadcaster(open_backend(redis_server.url), signer)
    for _ in range(3):
        publisher.set("event:final", "onsale")
    log = ListLogger()
    running = quick_subscriber(redis_server.url, verifier, logger=log).start()
    try:
        assert wait_for(lambda: running.revision == 3)
        raw.flushall()
        assert wait_for(lambda: running.store_resets == 1, timeout=5)
        assert any("went back in time" in event for _, event in log.events)
        assert running.mode_for("final") == "onsale"  # kept
        again = Broadcaster(open_backend(redis_server.url), signer)
        assert again.set("event:final", "normal", reason="after the flush").revision == 1
        assert wait_for(lambda: running.mode_for("final") == "normal")
        assert running.rejected()["replayed"] == 0
    finally:
        running.stop()


@pytest.mark.redis
def test_a_publisher_never_builds_on_a_store_it_no_longer_has(
    redis_server: RedisServer, raw: Any, keys_on_disk: tuple[Path, Path]
) -> None:
    """A publisher appends on what it wrote last without reading first; the store must refuse
    that when anything changed since, even a history rebuilt up to the same last id.

    Here the store is emptied and another publisher writes four other states (ids 1-0 to 4-0
    again, under another head): the first publisher's next change must follow them, so that
    every reader still verifies the whole log.
    """
    signer, verify = Signer.from_file(keys_on_disk[0]), keys_on_disk[1]
    verifier = Verifier.from_files([verify])
    first = Broadcaster(open_backend(redis_server.url), signer)
    first.set("event:a", "onsale")
    first.set("event:a", "normal")
    other = Broadcaster(open_backend(redis_server.url), signer)
    assert other.set("event:b", "onsale").revision == 3  # the first one's cache is now behind
    assert first.set("event:c", "onsale").revision == 4
    raw.flushall()
    again = Broadcaster(open_backend(redis_server.url), signer)
    for scope in ("event:w", "event:x", "event:y", "event:w"):
        again.set(scope, "onsale")  # up to id 4-0, the first one's last id, another history
    assert first.set("event:z", "onsale").revision == 5
    history = ModeHistory(open_backend(redis_server.url), verifier)
    assert history.problem is None
    assert [s.scope for s in history.transitions()] == [
        "event:w",
        "event:x",
        "event:y",
        "event:w",
        "event:z",
    ]
    assert onsale_in(mode_get(redis_server.url, verify)) == {
        "event:w",
        "event:x",
        "event:y",
        "event:z",
    }


@pytest.mark.redis
def test_old_entries_readded_after_an_empty_restart_are_not_open_onsales(
    redis_server: RedisServer, raw: Any, keys_on_disk: tuple[Path, Path]
) -> None:
    """Item 2, last case: the store emptied, then old signed entries re-added with their ids.

    Fresh readers and ``mode history --windows`` see a store nothing vouches for: they say
    so (exit 3, stale) instead of showing the old on-sale as open.
    """
    signer, verify = Signer.from_file(keys_on_disk[0]), keys_on_disk[1]
    verifier = Verifier.from_files([verify])
    publisher = Broadcaster(open_backend(redis_server.url), signer)
    publisher.set("event:a", "onsale")
    publisher.set("event:a", "normal")
    old = raw.xrange("onsale:log")
    raw.flushall()
    stream_id, fields = old[0]
    raw.xadd("onsale:log", fields, id=stream_id)  # the old on-sale, at its own id
    sub = ModeSubscriber(open_backend(redis_server.url), verifier, registry=None)
    assert sub.sync()
    assert sub.mode_for("a") == "normal"
    assert sub.stale
    assert sub.trouble is not None
    got = mode_get(redis_server.url, verify)
    assert got.exit_code == 3
    assert "no signed head" in got.stderr
    windows = invoke(
        "mode", "history", "--windows", "--backend", redis_server.url, "--verify-key", verify
    )
    assert windows.exit_code == 3
    assert "no signed head" in windows.stderr
    assert ModeHistory(open_backend(redis_server.url), verifier).onsale_windows() == []
    with pytest.raises(StoreIntegrityError):
        publisher.set("event:b", "onsale")


@pytest.mark.redis
@pytest.mark.slow
def test_sixteen_publishers_racing_never_fail(
    redis_server: RedisServer, keys_on_disk: tuple[Path, Path]
) -> None:
    """Item 5: 16 processes x 60 ``Broadcaster.set`` at once: every one lands, revisions 1..960."""
    code = (
        "import sys\n"
        "from onsale_obs.modes import Broadcaster, Signer, open_backend\n"
        "b = Broadcaster(open_backend(sys.argv[1]), Signer.from_file(sys.argv[2]))\n"
        "for i in range(60):\n"
        "    b.set('event:e' + sys.argv[3], 'onsale' if i % 2 else 'normal')\n"
    )
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code, redis_server.url, str(keys_on_disk[0]), str(n)],
            cwd=ROOT,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in range(16)
    ]
    failures = []
    for proc in procs:
        _out, err = proc.communicate(timeout=240)
        if proc.returncode:
            failures.append(err[-500:])
    assert failures == []
    verifier = Verifier.from_files([keys_on_disk[1]])
    history = ModeHistory(open_backend(redis_server.url), verifier)
    assert [s.revision for s in history.transitions()] == list(range(1, 961))
    assert history.problem is None


@pytest.mark.redis
def test_an_id_out_of_range_is_counted_and_publishing_says_why(
    redis_server: RedisServer, raw: Any, keys_on_disk: tuple[Path, Path]
) -> None:
    """Item 6: ``XADD ... 18446744073709551615-0`` rejects every later id: a clear error (exit 3)
    instead of a TypeError, and running services keep their modes and count it."""
    signer, verify = Signer.from_file(keys_on_disk[0]), keys_on_disk[1]
    verifier = Verifier.from_files([verify])
    publisher = Broadcaster(open_backend(redis_server.url), signer)
    publisher.set("event:final", "onsale")
    running = fresh(redis_server.url, verifier)
    raw.xadd("onsale:log", {"scope": "event:final", "msg": "x"}, id=f"{2**64 - 1}-0")
    assert running.sync(0.2)
    assert running.rejected()["malformed"] == 1
    assert running.mode_for("final") == "onsale"
    with pytest.raises(StoreIntegrityError, match="beyond revision"):
        publisher.set("event:final", "normal")
    result = invoke(
        "mode", "set", "normal", "--scope", "event:final",
        "--backend", redis_server.url, "--signing-key", keys_on_disk[0],
    )  # fmt: skip
    assert result.exit_code == 3
    assert "beyond revision" in result.stderr
    assert "Traceback" not in result.output


@pytest.mark.redis
def test_a_flood_of_forged_entries_costs_a_few_log_lines(
    redis_server: RedisServer, raw: Any, keys_on_disk: tuple[Path, Path]
) -> None:
    """Item 6: 20,000 forged entries: counted, summed up in a few lines, and a new service syncs
    from the verified snapshot without reading them."""
    signer, verify = Signer.from_file(keys_on_disk[0]), keys_on_disk[1]
    verifier = Verifier.from_files([verify])
    Broadcaster(open_backend(redis_server.url), signer).set("event:final", "onsale")
    log = ListLogger()
    running = ModeSubscriber(open_backend(redis_server.url), verifier, registry=None, logger=log)
    assert running.sync()
    pipe = raw.pipeline(transaction=False)
    for revision in range(2, 20_002):
        pipe.xadd("onsale:log", {"scope": "event:final", "msg": "{}"}, id=f"{revision}-0")
    pipe.execute()
    while running.revision < 20_001:
        assert running.sync(0.1)
    assert running.rejected()["unvouched"] == 20_000
    assert len([e for _, e in log.events if "rejected" in e]) <= 3
    newcomer = ModeSubscriber(open_backend(redis_server.url), verifier, registry=None)
    assert newcomer.sync()
    assert newcomer.mode_for("final") == "onsale"
    assert newcomer.rejected()["unvouched"] == 0  # never read them


@pytest.mark.redis
def test_the_password_in_a_redis_url_is_never_printed(keys_on_disk: tuple[Path, Path]) -> None:
    """Item 6: ``redis://:secret@...`` does not appear in errors of the mode commands."""
    url = "redis://:s3cret-pw@127.0.0.1:1/0"
    for args in (
        ("mode", "get", "--backend", url, "--verify-key", keys_on_disk[1], "--format", "json"),
        ("mode", "set", "onsale", "--scope", "global", "--backend", url,
         "--signing-key", keys_on_disk[0], "--format", "json"),
        ("mode", "history", "--backend", url, "--verify-key", keys_on_disk[1]),
    ):  # fmt: skip
        result = invoke(*args)
        assert result.exit_code == 3, result.output
        assert "s3cret-pw" not in result.output
        assert "127.0.0.1:1" in result.stderr
