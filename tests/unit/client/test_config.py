import pytest

from strom.client.config import ClientConfig, ConfigError, parse_acks, parse_bootstrap


def test_defaults_are_kafkas() -> None:
    c = ClientConfig.from_dict({})
    assert c.bootstrap_servers == (("localhost", 9092),)
    assert c.acks == -1  # acks=all since Kafka 3.0
    assert c.request_timeout_ms == 30_000
    assert c.batch_size == 16_384
    assert c.compression == 0


def test_parse_values() -> None:
    c = ClientConfig.from_dict(
        {
            "bootstrap.servers": "a:1, [::1]:2",
            "acks": "1",
            "compression.type": "zstd",
            "linger.ms": "7",
        }
    )
    assert c.bootstrap_servers == (("a", 1), ("::1", 2))
    assert (c.acks, c.compression, c.linger_ms) == (1, 4, 7)
    assert parse_acks("all") == -1 and parse_acks(0) == 0


@pytest.mark.parametrize(
    ("cfg", "key"),
    [
        ({"bootstrap.servers": "nohost"}, "bootstrap.servers"),
        ({"bootstrap.servers": ""}, "bootstrap.servers"),
        ({"acks": "2"}, "acks"),
        ({"compression.type": "brotli"}, "compression.type"),
        ({"linger.ms": "soon"}, "linger.ms"),
        ({"isolation.level": "dirty"}, "isolation.level"),
    ],
)
def test_invalid_values_name_the_key(cfg: dict[str, str], key: str) -> None:
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        ClientConfig.from_dict(cfg)


def test_parse_bootstrap_list() -> None:
    assert parse_bootstrap("h:1,h2:2") == [("h", 1), ("h2", 2)]
