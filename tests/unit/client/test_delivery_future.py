"""The blocking Producer's DeliveryFuture: completed on one thread, waited on another."""

from __future__ import annotations

import threading

import pytest

from strom.client.blocking import DeliveryFuture
from strom.client.messages import RecordMetadata
from strom.protocol.errors import ErrorCode, KafkaError

MD = RecordMetadata("t", 0, 5, 1000)


def test_result_waits_for_another_thread() -> None:
    f = DeliveryFuture()
    assert not f.done() and f.running()
    timer = threading.Timer(0.05, f.set_result, (MD,))
    timer.start()
    assert f.result(5) == MD
    assert f.done() and f.exception() is None and not f.cancelled()
    timer.join()


def test_a_failed_record_raises_its_error() -> None:
    f = DeliveryFuture()
    err = KafkaError(ErrorCode.MESSAGE_TOO_LARGE, "too large")
    f.set_exception(err)
    f.set_result(MD)  # the first outcome stays
    assert f.exception() is err
    with pytest.raises(KafkaError) as info:
        f.result()
    assert info.value is err


def test_result_times_out_when_nothing_comes() -> None:
    with pytest.raises(TimeoutError):
        DeliveryFuture().result(0.01)


def test_callbacks_run_once_added_before_or_after_completion() -> None:
    f = DeliveryFuture()
    seen: list[object] = []
    f.add_done_callback(lambda fut: seen.append(("before", fut.result())))
    assert seen == []
    f.set_result(MD)
    f.add_done_callback(lambda fut: seen.append(("after", fut.result())))
    assert seen == [("before", MD), ("after", MD)]
    assert not f.cancel()
