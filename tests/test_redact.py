"""Credentials never survive redaction, and what names the server does."""

from __future__ import annotations

from urllib.parse import quote

import pytest
from hypothesis import assume, example, given
from hypothesis import strategies as st

from onsale_obs.redact import MASK, redact_text, redact_url

SCHEMES = st.sampled_from(["redis", "rediss", "http", "https", "unix", "valkey"])
HOSTS = st.one_of(
    st.from_regex(r"[a-z][a-z0-9-]{0,15}(\.[a-z][a-z0-9-]{0,8}){0,2}", fullmatch=True),
    st.ip_addresses(v=4).map(str),
    st.ip_addresses(v=6).map(lambda ip: f"[{ip}]"),
)
PORTS = st.one_of(st.just(""), st.integers(1, 65535).map(lambda p: f":{p}"))
USERS = st.from_regex(r"[A-Za-z0-9._~-]{0,12}", fullmatch=True)
PATHS = st.from_regex(r"(/[A-Za-z0-9._-]{0,8}){0,3}", fullmatch=True)
QUERIES = st.sampled_from(["", "?db=0", "?x=1&timeout=5s", "?protocol=3&ssl_cert_reqs=none"])


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("redis://:secret@host", "redis://:***@host"),
        ("redis://user:secret@host", "redis://user:***@host"),
        ("http://user:pass@host", "http://user:***@host"),
        ("rediss://default:tok@host:6380/0?x=1", "rediss://default:***@host:6380/0?x=1"),
        ("https://tok3n@prom.example.com/api", "https://***@prom.example.com/api"),
        ("redis://:p%40ss%2Fword@10.0.0.1:6379", "redis://:***@10.0.0.1:6379"),
        ("redis://:p@ss@host:6379/0", "redis://:***@host:6379/0"),
        ("http://u:p@[::1]:9090/prometheus", "http://u:***@[::1]:9090/prometheus"),
        ("unix:///run/redis.sock?db=0&password=pw", "unix:///run/redis.sock?db=0&password=***"),
        (
            "http://h/api?Token=t&API_KEY=k&apikey=k2&q=up",
            "http://h/api?Token=***&API_KEY=***&apikey=***&q=up",
        ),
        ("https://h/#access_token=t&state=s", "https://h/#access_token=***&state=s"),
        ("http://127.0.0.1:9090", "http://127.0.0.1:9090"),
        ("sqlite:///var/lib/onsale.db", "sqlite:///var/lib/onsale.db"),
        ("onsale.db", "onsale.db"),
        ("memory://", "memory://"),
        ("", ""),
    ],
)
def test_examples(url: str, expected: str) -> None:
    """The password, a token user name and secret parameters are masked; the rest is kept."""
    assert redact_url(url) == expected


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://[::1", "http://[::1"),
        ("http://user:pw@[::1", "http://user:***@[::1"),
        ("redis://:pa/ss@host:6379/0", "redis://***@host:6379/0"),
        ("redis://:pa?ss@host", "redis://***@host"),
        ("redis://:pa#ss@host", "redis://***@host"),
        ("http://u:pw@h/p?next=a@b", "http://***@b"),
        ("://:x@", "://:***@"),
        ("//@", "//***@"),
    ],
)
def test_junk_is_masked_more_never_less(url: str, expected: str) -> None:
    """A URL that does not parse cleanly is masked from // to its last @ (never raises)."""
    assert redact_url(url) == expected


@given(
    scheme=SCHEMES,
    user=USERS,
    password=st.text(min_size=1),
    host=HOSTS,
    port=PORTS,
    path=PATHS,
    query=QUERIES,
)
@example(scheme="redis", user="", password="secret", host="h", port="", path="", query="")
def test_an_encoded_password_never_survives_and_the_rest_does(
    scheme: str, user: str, password: str, host: str, port: str, path: str, query: str
) -> None:
    """A percent-encoded password (any text) is masked; scheme, user, host, port, path, query stay."""
    encoded = quote(password, safe="")
    url = f"{scheme}://{user}:{encoded}@{host}{port}{path}{query}"
    expected = f"{scheme}://{user}:{MASK}@{host}{port}{path}{query}"
    assume(password not in expected and encoded not in expected)
    redacted = redact_url(url)
    assert redacted == expected
    assert password not in redacted
    assert encoded not in redacted


@given(
    scheme=SCHEMES,
    user=USERS,
    password=st.text(min_size=1),
    host=HOSTS,
    port=PORTS,
    path=PATHS,
)
def test_a_raw_password_never_survives(
    scheme: str, user: str, password: str, host: str, port: str, path: str
) -> None:
    """A password written unencoded (with /, ?, #, @, : or spaces) is masked; the host stays."""
    url = f"{scheme}://{user}:{password}@{host}{port}{path}"
    skeleton = f"{scheme}://{user}:{MASK}@{host}{port}{path}"
    assume(password not in skeleton)
    redacted = redact_url(url)
    assert password not in redacted
    assert redacted.endswith(f"@{host}{port}{path}")


@given(
    name=st.sampled_from(
        ["password", "PASS", "pwd", "token", "Secret", "auth", "apikey", "api_key"]
    ),
    value=st.from_regex(r"[A-Za-z0-9._~%-]{1,30}", fullmatch=True),
    host=HOSTS,
)
def test_secret_parameters_never_survive(name: str, value: str, host: str) -> None:
    """A secret-named query parameter keeps its name and loses its value, whatever its case."""
    url = f"redis://{host}:6379/0?db=1&{name}={value}&ssl=true"
    expected = f"redis://{host}:6379/0?db=1&{name}={MASK}&ssl=true"
    assume(value not in expected)
    assert redact_url(url) == expected


@given(st.text())
def test_never_raises_and_is_idempotent(text: str) -> None:
    """Any text is accepted; redacting twice changes nothing more."""
    once = redact_url(text)
    assert redact_url(once) == once
    assert redact_text(redact_text(text)) == redact_text(text)


def test_text_with_a_url_and_the_password_alone() -> None:
    """In a message, the URL is redacted and the password is masked wherever it is quoted."""
    url = "redis://default:s3cr%40t@cache:6379/0"
    message = f"cannot reach {url}: AUTH 's3cr@t' rejected (tried s3cr%40t) at {url!r}"
    assert redact_text(message, url) == (
        "cannot reach redis://default:***@cache:6379/0: AUTH '***' rejected (tried ***) "
        "at 'redis://default:***@cache:6379/0'"
    )


def test_text_without_urls_redacts_urls_it_contains() -> None:
    """Without URLs given, any URL inside the text is still redacted."""
    message = "POST http://u:pw@prom:9090/api/v1/query failed (url='https://t0k@x/y')"
    assert redact_text(message) == (
        "POST http://u:***@prom:9090/api/v1/query failed (url='https://***@x/y')"
    )


@given(
    user=USERS,
    password=st.text(min_size=1),
    host=HOSTS,
    before=st.text(),
    after=st.text(),
)
def test_a_password_never_survives_in_text(
    user: str, password: str, host: str, before: str, after: str
) -> None:
    """Wherever the text quotes the URL or its password (raw, encoded or repr), it is masked."""
    url = f"http://{user}:{quote(password, safe='')}@{host}:9090"
    text = f"{before} {url} {password} {password!r} {url!r} {after}"
    skeleton = f"{before} {MASK} {after} http://{user}:{MASK}@{host}:9090"
    assume(password not in skeleton)
    assert password not in redact_text(text, url)
