import random
import warnings

import pytest

from strom.client.partitioner import DefaultPartitioner, murmur2, partition_for_key, to_positive

# Vectors from Apache Kafka's UtilsTest.testMurmur2 (signed Java ints).
JAVA_VECTORS = [
    (b"21", -973932308),
    (b"foobar", -790332482),
    (b"a-little-bit-long-string", -985981536),
    (b"a-little-bit-longer-string", -1486304829),
    (b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971),
    (b"abc", 479470107),
]


@pytest.mark.parametrize(("key", "expected"), JAVA_VECTORS)
def test_murmur2_matches_java(key: bytes, expected: int) -> None:
    assert murmur2(key) == expected


def test_murmur2_empty_key() -> None:
    assert murmur2(b"") == 275646681


def test_murmur2_matches_kafka_python_for_random_keys() -> None:
    with warnings.catch_warnings():  # kafka-python imports with deprecated importlib APIs
        warnings.simplefilter("ignore", DeprecationWarning)
        from kafka.partitioner.default import (  # type: ignore[import-untyped]
            murmur2 as kafka_python_murmur2,
        )
    rng = random.Random(7)
    for n in range(300):
        key = bytes(rng.randrange(256) for _ in range(n % 41))
        assert murmur2(key) & 0xFFFFFFFF == kafka_python_murmur2(key)


def test_to_positive_clears_sign_bit_like_java() -> None:
    assert to_positive(-1) == 0x7FFFFFFF
    assert to_positive(-(2**31)) == 0
    assert to_positive(5) == 5


def test_partition_for_key() -> None:
    # toPositive(murmur2("a")) % 3 == 1 in the Java client.
    assert partition_for_key(b"a", 3) == 1
    assert partition_for_key(b"21", 10) == to_positive(-973932308) % 10
    with pytest.raises(ValueError):
        partition_for_key(b"a", 0)


def test_unkeyed_records_go_round_robin_per_topic() -> None:
    p = DefaultPartitioner()
    assert [p.partition("t", None, 3) for _ in range(5)] == [0, 1, 2, 0, 1]
    assert p.partition("other", None, 3) == 0
    assert p.partition("t", b"a", 3) == 1
