"""Incremental fetch sessions (KIP-227) as Kafka's FetchSession.scala has them: pure logic,
no broker, a fake clock."""

from __future__ import annotations

import random

import pytest

from strom.broker.fetch_sessions import (
    EVICTION_MS,
    FINAL_EPOCH,
    INITIAL_EPOCH,
    FetchContext,
    FetchSessionCache,
    new_context,
    next_epoch,
)
from strom.protocol.errors import ErrorCode
from strom.protocol.generated.fetch import FetchRequest, FetchResponse

FP = FetchRequest.FetchPartition
PD = FetchResponse.PartitionData
IDS = {b"a" * 16: "a", b"b" * 16: "b"}


def names(topic_id: bytes) -> str | None:
    return IDS.get(topic_id)


def fetch(
    session_id: int,
    epoch: int,
    parts: dict[str, list[tuple[int, int]]],
    forget: dict[str, list[int]] | None = None,
    *,
    by_id: bool = False,
) -> FetchRequest:
    """A request naming ``parts`` ({topic: [(partition, fetch offset)]})."""
    ids = {v: k for k, v in IDS.items()}

    def topic(name: str) -> tuple[str, bytes]:
        return ("", ids[name]) if by_id else (name, bytes(16))

    return FetchRequest(
        session_id=session_id,
        session_epoch=epoch,
        topics=[
            FetchRequest.FetchTopic(*topic(t), [FP(partition=p, fetch_offset=o) for p, o in ps])
            for t, ps in parts.items()
        ],
        forgotten_topics_data=[
            FetchRequest.ForgottenTopic(*topic(t), ps) for t, ps in (forget or {}).items()
        ],
    )


def context(
    cache: FetchSessionCache,
    req: FetchRequest,
    now: int = 0,
    *,
    version: int = 12,
    follower: bool = False,
) -> FetchContext:
    return new_context(cache, version, req, follower, names, now)


def answer(
    ctx: FetchContext,
    hw: int = 10,
    records: dict[int, bytes] | None = None,
    now: int = 0,
    error: int = 0,
    version: int = 12,
) -> tuple[int, int, list[tuple[str | None, int]]]:
    """Respond with every partition at high watermark ``hw`` (records by partition)."""
    parts = [
        PD(
            partition_index=i.req.partition,
            high_watermark=hw,
            log_start_offset=0,
            error_code=error,
            records=(records or {}).get(i.req.partition, b""),
        )
        for i in ctx.items
    ]
    code, session_id, pairs = ctx.respond(parts, version >= 13, now)
    return code, session_id, [(i.topic, i.req.partition) for i, _ in pairs]


def open_session(
    cache: FetchSessionCache, parts: dict[str, list[tuple[int, int]]], **kw: int
) -> int:
    code, session_id, _ = answer(context(cache, fetch(0, INITIAL_EPOCH, parts), **kw))
    assert code == 0 and session_id > 0
    return session_id


def test_next_epoch_wraps_to_one_and_final_stays_final() -> None:
    assert next_epoch(0) == 1
    assert next_epoch(5) == 6
    assert next_epoch(2**31 - 1) == 1
    assert next_epoch(FINAL_EPOCH) == FINAL_EPOCH


def test_a_full_fetch_with_epoch_0_creates_a_session_of_its_partitions() -> None:
    cache = FetchSessionCache(10)
    ctx = context(cache, fetch(0, INITIAL_EPOCH, {"a": [(0, 5), (1, 7)]}))
    assert [(i.topic, i.req.partition, i.req.fetch_offset) for i in ctx.items] == [
        ("a", 0, 5),
        ("a", 1, 7),
    ]
    code, session_id, answered = answer(ctx)
    assert code == 0 and session_id in cache.sessions
    assert answered == [("a", 0), ("a", 1)]  # a full answer names every partition
    session = cache.sessions[session_id]
    assert session.epoch == 1 and len(session.partitions) == 2 and not session.privileged


def test_final_epoch_is_sessionless_and_closes_the_session_it_names() -> None:
    cache = FetchSessionCache(10)
    session_id = open_session(cache, {"a": [(0, 0)]})
    code, answered_id, answered = answer(
        context(cache, fetch(session_id, FINAL_EPOCH, {"a": [(0, 0)]}))
    )
    assert (code, answered_id, answered) == (0, 0, [("a", 0)])
    assert session_id not in cache.sessions


def test_a_full_fetch_naming_a_session_closes_it_and_opens_another() -> None:
    cache = FetchSessionCache(10)
    first = open_session(cache, {"a": [(0, 0)]})
    _, second, _ = answer(context(cache, fetch(first, INITIAL_EPOCH, {"b": [(0, 0)]})))
    assert first not in cache.sessions and second in cache.sessions and second != first


def test_an_incremental_fetch_reads_the_whole_session_and_answers_what_changed() -> None:
    cache = FetchSessionCache(10)
    session_id = open_session(cache, {"a": [(0, 10), (1, 10)], "b": [(0, 10)]})
    ctx = context(cache, fetch(session_id, 1, {}))
    assert [(i.topic, i.req.partition) for i in ctx.items] == [("a", 0), ("a", 1), ("b", 0)]
    assert answer(ctx)[2] == []  # nothing changed: an empty answer
    ctx = context(cache, fetch(session_id, 2, {}))
    code, answered_id, answered = answer(ctx, records={1: b"x" * 20})
    assert (code, answered_id, answered) == (0, session_id, [("a", 1)])
    # the partition that was served moved to the end of the session
    assert [k for k in cache.sessions[session_id].partitions] == [("a", 0), ("b", 0), ("a", 1)]
    # a new high watermark is answered once
    assert answer(context(cache, fetch(session_id, 3, {})), hw=11)[2] == [
        ("a", 0),
        ("b", 0),
        ("a", 1),
    ]
    assert answer(context(cache, fetch(session_id, 4, {})), hw=11)[2] == []


def test_errors_are_always_answered_and_the_partition_again_once_they_clear() -> None:
    cache = FetchSessionCache(10)
    session_id = open_session(cache, {"a": [(0, 10)]})
    err = ErrorCode.NOT_LEADER_OR_FOLLOWER
    assert answer(context(cache, fetch(session_id, 1, {})), error=err)[2] == [("a", 0)]
    assert answer(context(cache, fetch(session_id, 2, {})), error=err)[2] == [("a", 0)]
    assert answer(context(cache, fetch(session_id, 3, {})))[2] == [("a", 0)]  # cleared
    assert answer(context(cache, fetch(session_id, 4, {})))[2] == []


def test_incremental_requests_add_update_and_forget_partitions() -> None:
    cache = FetchSessionCache(10)
    session_id = open_session(cache, {"a": [(0, 10), (1, 10)]})
    ctx = context(cache, fetch(session_id, 1, {"a": [(1, 42)], "b": [(0, 3)]}, {"a": [0]}))
    assert [(i.topic, i.req.partition, i.req.fetch_offset) for i in ctx.items] == [
        ("a", 1, 42),
        ("b", 0, 3),
    ]
    # a new partition is answered the first time (its high watermark is news); an
    # updated one only when something changed
    assert answer(ctx)[2] == [("b", 0)]
    assert cache.sessions[session_id].epoch == 2


def test_forgetting_every_partition_ends_the_session() -> None:
    cache = FetchSessionCache(10)
    session_id = open_session(cache, {"a": [(0, 10)]})
    ctx = context(cache, fetch(session_id, 1, {}, {"a": [0]}))
    code, answered_id, answered = answer(ctx)
    assert (code, answered_id, answered) == (0, 0, [])
    assert session_id not in cache.sessions


def test_unknown_session_and_wrong_epoch_are_refused() -> None:
    cache = FetchSessionCache(10)
    session_id = open_session(cache, {"a": [(0, 10)]})
    ctx = context(cache, fetch(session_id + 1, 1, {}))
    assert (ctx.error, ctx.items) == (ErrorCode.FETCH_SESSION_ID_NOT_FOUND, [])
    for epoch in (2, 5):
        ctx = context(cache, fetch(session_id, epoch, {}))
        assert ctx.error == ErrorCode.INVALID_FETCH_SESSION_EPOCH
    assert cache.sessions[session_id].epoch == 1  # refused requests change nothing
    assert context(cache, fetch(session_id, 1, {})).error == 0


def test_a_duplicate_request_that_lost_the_race_gets_invalid_epoch() -> None:
    cache = FetchSessionCache(10)
    session_id = open_session(cache, {"a": [(0, 10)]})
    slow = context(cache, fetch(session_id, 1, {}))  # e.g. a long poll
    session = cache.sessions[session_id]
    session.epoch = 7  # meanwhile other requests moved the session on
    assert answer(slow)[:2] == (ErrorCode.INVALID_FETCH_SESSION_EPOCH, session_id)


def test_sessions_by_topic_id_need_requests_by_topic_id() -> None:
    cache = FetchSessionCache(10)
    code, session_id, answered = answer(
        context(cache, fetch(0, 0, {"a": [(0, 1)]}, by_id=True), version=13), version=13
    )
    assert code == 0 and session_id and answered == [("a", 0)]
    assert context(cache, fetch(session_id, 1, {}), version=12).error == (
        ErrorCode.FETCH_SESSION_TOPIC_ID_ERROR
    )
    ctx = context(cache, fetch(session_id, 1, {}, {"a": [0]}, by_id=True), version=13)
    assert ctx.error == 0 and ctx.items == []


def test_a_deleted_topic_id_reads_as_unknown_in_the_session() -> None:
    cache = FetchSessionCache(10)
    _, session_id, _ = answer(
        context(cache, fetch(0, 0, {"b": [(0, 1)]}, by_id=True), version=13), version=13
    )
    del IDS[b"b" * 16]
    try:
        ctx = context(cache, fetch(session_id, 1, {}, by_id=True), version=13)
        assert [(i.topic, i.topic_id) for i in ctx.items] == [(None, b"b" * 16)]
    finally:
        IDS[b"b" * 16] = "b"


def test_a_full_cache_creates_no_session_for_a_consumer() -> None:
    cache = FetchSessionCache(1)
    open_session(cache, {"a": [(0, 0)]})
    code, session_id, answered = answer(context(cache, fetch(0, 0, {"a": [(0, 0), (1, 0)]})))
    assert (code, session_id, answered) == (0, 0, [("a", 0), ("a", 1)])
    assert len(cache) == 1 and cache.evictions == 0


def test_a_follower_evicts_a_consumer_session() -> None:
    cache = FetchSessionCache(1)
    consumer = open_session(cache, {"a": [(0, 0), (1, 0), (2, 0)]})
    follower = open_session(cache, {"a": [(0, 0)]}, follower=True)
    assert list(cache.sessions) == [follower] and cache.evictions == 1
    assert context(cache, fetch(consumer, 1, {})).error == ErrorCode.FETCH_SESSION_ID_NOT_FOUND
    # a consumer cannot evict a recently created follower session
    code, session_id, _ = answer(context(cache, fetch(0, 0, {"a": [(0, 0)]})))
    assert (code, session_id) == (0, 0) and list(cache.sessions) == [follower]


def test_a_stale_session_is_evicted_by_anyone() -> None:
    cache = FetchSessionCache(1)
    follower = open_session(cache, {"a": [(0, 0)]}, follower=True, now=0)
    now = EVICTION_MS + 1
    _, session_id, _ = answer(context(cache, fetch(0, 0, {"b": [(0, 0)]}), now=now), now=now)
    assert session_id and follower not in cache.sessions


def test_an_old_session_with_fewer_partitions_yields_to_a_bigger_one() -> None:
    cache = FetchSessionCache(1)
    small = open_session(cache, {"a": [(0, 0)]}, now=0)
    # used recently (not stale) but created long ago: evictable by all
    answer(context(cache, fetch(small, 1, {}), now=EVICTION_MS + 5), now=EVICTION_MS + 5)
    now = EVICTION_MS + 10
    smaller = fetch(0, 0, {"b": []})
    assert answer(context(cache, smaller, now=now), now=now)[1] == 0  # 0 < 1 partition
    bigger = fetch(0, 0, {"b": [(0, 0), (1, 0)]})
    _, session_id, _ = answer(context(cache, bigger, now=now), now=now)
    assert session_id and small not in cache.sessions


def test_a_session_created_recently_is_not_evicted_for_a_bigger_consumer() -> None:
    cache = FetchSessionCache(1)
    small = open_session(cache, {"a": [(0, 0)]}, now=0)
    bigger = fetch(0, 0, {"b": [(0, 0), (1, 0), (2, 0)]})
    assert answer(context(cache, bigger, now=1000), now=1000)[1] == 0
    assert small in cache.sessions


def test_session_ids_are_positive_and_unique() -> None:
    cache = FetchSessionCache(1000, rng=random.Random(1))
    ids = {open_session(cache, {"a": [(0, 0)]}) for _ in range(200)}
    assert len(ids) == 200 and min(ids) > 0


@pytest.mark.parametrize("version", [4, 6])
def test_versions_before_7_have_no_sessions(version: int) -> None:
    cache = FetchSessionCache(10)
    req = fetch(0, INITIAL_EPOCH, {"a": [(0, 0)]})
    code, session_id, _ = answer(context(cache, req, version=version))
    assert (code, session_id, len(cache)) == (0, 0, 0)
