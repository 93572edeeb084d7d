"""Configuration: every bad setting is a typed ``ConfigError`` at once, and no secret leaks.

The secret tests point real connections at the test server with a password inside the URI
and look for it in every place a user or a log reader could see it.
"""

from __future__ import annotations

import logging
import time
import traceback
from urllib.parse import quote

import pytest
from typer.testing import CliRunner

from session_graph import ConfigError, SessionStore, Settings
from session_graph.cli import app
from session_graph.connection import ready_connection
from session_graph.runtime import ConnectionInfo

SECRET = "s3cret-Pa55:w@rd/x"  # holds the characters URIs need quoted


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in list(os.environ):
        if name.startswith("SESSION_GRAPH_"):
            monkeypatch.delenv(name)


BAD_URIS = [
    ("bolt://[::1", "not valid"),
    ("bolt://127.0.0.1:99999", "not valid"),
    ("bolt://127.0.0.1:0", "port"),
    ("http://127.0.0.1:7687", "must start with"),
    ("127.0.0.1:7687", "must start with"),
    ("bolt://:7687", "no host"),
    ("bolt://exa mple:7687", "host"),
    ("bolt://a..b:7687", "host"),
    ("bolt://host:7687/db", "path"),
    ("bolt://host:7687#x", "fragment"),
    ("bolt://host:7687?routing=x", "neo4j://"),
    (f"bolt://neo4j:{quote(SECRET, safe='')}@host:99999", "not valid"),
]


@pytest.mark.parametrize(("uri", "says"), BAD_URIS)
def test_bad_uris_are_config_errors_at_once(
    uri: str, says: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for make in (lambda: Settings(neo4j_uri=uri), lambda: Settings()):
        monkeypatch.setenv("SESSION_GRAPH_NEO4J_URI", uri)
        with pytest.raises(ConfigError, match=says) as caught:
            make()
        assert "SESSION_GRAPH_NEO4J_URI" in str(caught.value)
        assert SECRET not in str(caught.value) and quote(SECRET, safe="") not in str(caught.value)
        # The store's own entry point raises the same typed error (never pydantic's).
        with pytest.raises(ConfigError), SessionStore.open():
            pass


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("SESSION_GRAPH_CONNECT_TIMEOUT", "soon"),
        ("SESSION_GRAPH_CONNECT_TIMEOUT", "-1"),
        ("SESSION_GRAPH_RETRY_ATTEMPTS", "0"),
        ("SESSION_GRAPH_MAX_MESSAGE_BYTES", "-5"),
        ("SESSION_GRAPH_MAX_METADATA_BYTES", "lots"),
        ("SESSION_GRAPH_MIRROR_MAX_LAG", "-0.5"),
        ("SESSION_GRAPH_MIRROR_MAX_SESSIONS", "0"),
        ("SESSION_GRAPH_APPEND_CHUNK", "99999999999"),
        ("SESSION_GRAPH_LOCAL_PORT", "http"),
        ("SESSION_GRAPH_DOCKER", "sometimes"),
        ("SESSION_GRAPH_TENANT", ""),
        ("SESSION_GRAPH_TENANT", "a\x07b"),
        ("SESSION_GRAPH_CONNECT_TIMEOUT", "inf"),
        ("SESSION_GRAPH_MIRROR_MAX_LAG", "nan"),
        ("SESSION_GRAPH_ENCRYPTION_KEYS", ","),
        ("SESSION_GRAPH_ENCRYPTION_KEYS", " , "),
        ("SESSION_GRAPH_HOME", " "),
    ],
)
def test_bad_variables_are_config_errors_naming_the_variable(
    variable: str, value: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError, match=variable):
        Settings()


def test_credentials_in_the_uri_are_taken_out_of_it() -> None:
    settings = Settings(neo4j_uri=f"bolt://alice:{quote(SECRET, safe='')}@db.example:7687")
    assert settings.neo4j_uri == "bolt://db.example:7687"
    assert settings.neo4j_user == "alice"
    assert settings.neo4j_password is not None
    assert settings.neo4j_password.get_secret_value() == SECRET
    assert SECRET not in repr(settings) and SECRET not in str(settings.model_dump())
    # Same password twice is fine; two different ones are refused without echoing either.
    Settings(neo4j_uri=f"bolt://:{quote(SECRET, safe='')}@db.example", neo4j_password=SECRET)
    with pytest.raises(ConfigError, match="give one") as caught:
        Settings(neo4j_uri="bolt://u:other-pw@db.example", neo4j_password=SECRET)
    assert SECRET not in str(caught.value) and "other-pw" not in str(caught.value)
    with pytest.raises(ConfigError, match="give one"):
        Settings(neo4j_uri="bolt://bob:pw@db.example", neo4j_user="alice")


def test_a_host_that_does_not_resolve_fails_at_once() -> None:
    settings = Settings(neo4j_uri="bolt://no-such-host.invalid:7687", connect_timeout=60)
    began = time.monotonic()
    with pytest.raises(ConfigError, match="does not resolve"):
        ready_connection(settings)
    # Not a timed test of speed: a wait would have ended in ServerUnavailableError instead.
    assert time.monotonic() - began < 60


def _uri_with(info: ConnectionInfo, password: str, user: str | None = None) -> str:
    scheme, _, rest = info.uri.partition("://")
    return f"{scheme}://{user or info.user}:{quote(password, safe='')}@{rest}"


def test_the_right_password_in_the_uri_connects(neo4j_info: ConnectionInfo) -> None:
    assert neo4j_info.password is not None
    settings = Settings(neo4j_uri=_uri_with(neo4j_info, neo4j_info.password), tenant="cfg-ok")
    with SessionStore.open(settings, setup=True) as store:
        store.create_session(get_or_create=True, id="s")
        assert store.get_session("s").id == "s"


def test_a_wrong_password_in_the_uri_is_never_echoed(
    neo4j_info: ConnectionInfo, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A user of its own: Neo4j locks a user out for a while after repeated failed logins,
    # which would fail the other tests' logins as the real user.
    uri = _uri_with(neo4j_info, SECRET, user="sg-no-such-user")
    seen: list[str] = []
    with caplog.at_level(logging.DEBUG, logger="session_graph"):
        settings = Settings(neo4j_uri=uri, connect_timeout=5)
        with pytest.raises(ConfigError, match="refused the login") as caught, SessionStore.open(
            settings
        ):
            pass
        seen += traceback.format_exception(caught.value)
        seen += [r.getMessage() for r in caplog.records]

        monkeypatch.setenv("SESSION_GRAPH_NEO4J_URI", uri)
        monkeypatch.setenv("SESSION_GRAPH_CONNECT_TIMEOUT", "5")
        for args in (["sessions"], ["init"], ["show", "x"], ["neo4j", "status"]):
            result = CliRunner().invoke(app, args)
            seen += [result.stdout, result.stderr, repr(result.exception)]
            if args[0] != "neo4j":
                assert result.exit_code == 1, (args, result.stdout, result.stderr)
                assert "Traceback" not in result.stderr
    text = "\n".join(seen)
    for form in (SECRET, quote(SECRET, safe=""), quote(SECRET)):
        assert form not in text
