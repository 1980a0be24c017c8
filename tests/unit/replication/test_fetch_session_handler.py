"""The fetching side of KIP-227 (Kafka's FetchSessionHandler), alone and against the
broker's session cache."""

from __future__ import annotations

from strom.broker.fetch_sessions import FetchSessionCache, new_context
from strom.common.types import TopicPartition
from strom.protocol.errors import ErrorCode
from strom.protocol.generated.fetch import FetchRequest, FetchResponse
from strom.replication.fetch_session_handler import FetchSessionHandler, Wanted

FP = FetchRequest.FetchPartition
A0, A1, B0 = TopicPartition("a", 0), TopicPartition("a", 1), TopicPartition("b", 0)


ID = b"i" * 16


def wanted(topic_id: bytes = ID, **offsets: int) -> dict[TopicPartition, Wanted]:
    tps = {"a0": A0, "a1": A1, "b0": B0}
    return {
        tps[k]: (topic_id, FP(partition=tps[k].partition, fetch_offset=o))
        for k, o in offsets.items()
    }


def test_full_then_incremental_requests_send_only_changes() -> None:
    h = FetchSessionHandler()
    first = h.build_next(wanted(a0=0, a1=0))
    assert (first.session_id, first.epoch, list(first.to_send)) == (0, 0, [A0, A1])
    assert h.handle_response(FetchResponse(session_id=77))
    second = h.build_next(wanted(a0=5, a1=0, b0=0))
    assert (second.session_id, second.epoch) == (77, 1)
    assert list(second.to_send) == [A0, B0] and second.to_forget == []
    assert h.handle_response(FetchResponse(session_id=77))
    third = h.build_next(wanted(a0=5, b0=0))
    assert (third.epoch, list(third.to_send), third.to_forget) == (2, [], [(A1, ID)])


def test_a_topic_id_learnt_later_replaces_the_partition() -> None:
    h = FetchSessionHandler()
    h.build_next(wanted(topic_id=bytes(16), a0=0))
    h.handle_response(FetchResponse(session_id=3))
    req = h.build_next(wanted(a0=0))
    assert req.to_send == wanted(a0=0) and req.to_forget == [(A0, bytes(16))]


def test_session_errors_and_failures_start_over_with_a_full_request() -> None:
    h = FetchSessionHandler()
    h.build_next(wanted(a0=0))
    h.handle_response(FetchResponse(session_id=9))
    h.build_next(wanted(a0=0))
    assert not h.handle_response(FetchResponse(error_code=ErrorCode.INVALID_FETCH_SESSION_EPOCH))
    req = h.build_next(wanted(a0=0))
    assert (req.session_id, req.epoch, list(req.to_send)) == (9, 0, [A0])  # closes 9
    h.handle_response(FetchResponse(session_id=10))
    assert not h.handle_response(FetchResponse(error_code=ErrorCode.FETCH_SESSION_ID_NOT_FOUND))
    assert (h.session_id, h.epoch) == (0, 0)
    h.handle_response(FetchResponse(session_id=11))
    h.handle_error()
    assert h.build_next(wanted(a0=1)).is_full


def test_no_session_from_the_leader_keeps_full_requests() -> None:
    h = FetchSessionHandler()
    h.build_next(wanted(a0=0))
    assert h.handle_response(FetchResponse(session_id=0))
    assert h.build_next(wanted(a0=1)).is_full


def test_the_handler_and_the_broker_cache_agree_over_many_requests() -> None:
    """A follower's handler against the broker's cache: every request is accepted and
    each partition is read at the offset the follower last sent."""
    cache = FetchSessionCache(10)
    h = FetchSessionHandler()
    offsets = {A0: 0, A1: 0, B0: 0}
    for step in range(30):
        if step % 4 == 1:
            offsets[A1] += 3  # an append moved one follower position
        active = {tp: o for tp, o in offsets.items() if not (step % 7 == 3 and tp == B0)}
        data = h.build_next(
            {
                tp: (bytes(16), FP(partition=tp.partition, fetch_offset=o))
                for tp, o in active.items()
            }
        )
        by_topic: dict[str, list[FetchRequest.FetchPartition]] = {}
        for tp, (_, fp) in data.to_send.items():
            by_topic.setdefault(tp.topic, []).append(fp)
        forgotten: dict[str, list[int]] = {}
        for tp, _ in data.to_forget:
            forgotten.setdefault(tp.topic, []).append(tp.partition)
        req = FetchRequest(
            replica_id=2,
            session_id=data.session_id,
            session_epoch=data.epoch,
            topics=[FetchRequest.FetchTopic(t, bytes(16), ps) for t, ps in by_topic.items()],
            forgotten_topics_data=[
                FetchRequest.ForgottenTopic(t, bytes(16), ps) for t, ps in forgotten.items()
            ],
        )
        ctx = new_context(cache, 12, req, True, lambda _: None, step)
        assert ctx.error == 0
        read = {
            TopicPartition(str(i.topic), i.req.partition): i.req.fetch_offset for i in ctx.items
        }
        assert read == active
        parts = [FetchResponse.PartitionData(partition_index=i.req.partition) for i in ctx.items]
        code, session_id, _ = ctx.respond(parts, False, step)
        assert code == 0
        assert h.handle_response(FetchResponse(session_id=session_id))
    assert len(cache) == 1
