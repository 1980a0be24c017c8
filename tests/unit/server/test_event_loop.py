"""Which event loop a broker process runs on."""

from __future__ import annotations

import pytest

from strom.common.config import BrokerConfig
from strom.server.main import _has_tls_listener, _parse_listeners, loop_factory


def _config(listeners: str, protocol_map: str | None = None) -> BrokerConfig:
    props = {"listeners": listeners}
    if protocol_map is not None:
        props["listener.security.protocol.map"] = protocol_map
    return BrokerConfig(props)


def test_uvloop_unless_a_listener_uses_tls(monkeypatch: pytest.MonkeyPatch) -> None:
    uvloop = pytest.importorskip("uvloop")  # the test extra installs it
    monkeypatch.delenv("STROM_NO_UVLOOP", raising=False)
    assert loop_factory(tls=False) is uvloop.new_event_loop
    # uvloop's server-side start_tls never completes the handshake: asyncio's loop
    assert loop_factory(tls=True) is None
    monkeypatch.setenv("STROM_NO_UVLOOP", "1")
    assert loop_factory(tls=False) is None


@pytest.mark.parametrize(
    ("listeners", "protocol_map", "tls"),
    [
        ("PLAINTEXT://127.0.0.1:9092", None, False),
        ("SASL_PLAINTEXT://127.0.0.1:9092", None, False),
        ("PLAINTEXT://127.0.0.1:9092,SSL://127.0.0.1:9093", None, True),
        ("SASL_SSL://127.0.0.1:9093", None, True),
        ("INTERNAL://127.0.0.1:9093", "INTERNAL:SSL", True),
        ("nonsense", None, False),  # refused later, with the listener's message
    ],
)
def test_tls_listeners_are_recognised(listeners: str, protocol_map: str | None, tls: bool) -> None:
    assert _has_tls_listener(_parse_listeners(_config(listeners, protocol_map))) is tls
