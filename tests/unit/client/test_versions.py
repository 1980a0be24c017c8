import pytest

from strom.client.versions import CLIENT_API_VERSIONS, negotiate, version_for
from strom.protocol.api_versions import BROKER_API_VERSIONS, ApiKey
from strom.protocol.errors import ErrorCode, KafkaError


def test_picks_min_of_maxima() -> None:
    chosen = negotiate([(ApiKey.FETCH, 0, 17), (ApiKey.METADATA, 0, 5)])
    assert chosen == {ApiKey.FETCH: 12, ApiKey.METADATA: 5}


def test_drops_non_overlapping_and_unknown_apis() -> None:
    chosen = negotiate([(ApiKey.FETCH, 0, 3), (ApiKey.PRODUCE, 12, 14), (9999, 0, 1)])
    assert chosen == {}


def test_respects_broker_minimum() -> None:
    ours: dict[int, tuple[int, int]] = {ApiKey.LIST_OFFSETS: (1, 10)}
    assert negotiate([(ApiKey.LIST_OFFSETS, 2, 8)], ours) == {ApiKey.LIST_OFFSETS: 8}


def test_strom_broker_table_is_usable_by_the_client() -> None:
    chosen = negotiate((k, lo, hi) for k, (lo, hi) in BROKER_API_VERSIONS.items())
    for key in (ApiKey.PRODUCE, ApiKey.FETCH, ApiKey.METADATA, ApiKey.CREATE_TOPICS):
        assert chosen[key] == min(BROKER_API_VERSIONS[key][1], CLIENT_API_VERSIONS[key][1])


def test_version_for_missing_api_names_it() -> None:
    with pytest.raises(KafkaError) as info:
        version_for({}, ApiKey.CREATE_PARTITIONS)
    assert info.value.code == ErrorCode.UNSUPPORTED_VERSION
    assert "CREATE_PARTITIONS" in str(info.value)
