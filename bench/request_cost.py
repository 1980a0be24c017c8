"""CPU cost of one request inside the broker, without sockets: parse the frame's header,
decode, handle, encode the response (what strom.server.connection does per request).

An in-process single-node broker (logs in a temporary directory) serves pre-encoded
frames in a loop; the figure is process CPU microseconds per request (less sensitive
to a busy machine than wall time). With --profile, cProfile's top functions by
internal time are printed for each case.

    python bench/request_cost.py                 # every case, 20,000 requests each
    python bench/request_cost.py --profile --cases produce-acks1
    python bench/request_cost.py --connection    # through the connection layer too

With --connection each frame goes through what a socket's bytes go through:
strom.server.stream.ClientStream (bytes received into its frame buffer) and a real
strom.server.connection.Connection, on the loop the broker would run (uvloop when
installed), over an in-memory transport: one wake-up per request, as at a low request
rate; no system call. The difference from the plain figure is the connection layer's
and the loop's share of a request.

Cases as in bench/request_rate.py: metadata-none (naming no topic), produce-acks1,
produce-acksall (one record of 100 B), fetch-1p (the last record of one partition),
fetch-100p (100 caught-up partitions, no session), fetch-100p-session (the same in an
incremental session).
Figures only, never a timed assertion.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import pstats
import sys
import tempfile
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from strom.broker.api import Broker
from strom.common.config import BrokerConfig
from strom.common.types import TopicPartition
from strom.protocol.frame import (
    decode_request,
    decode_response,
    encode_response,
    parse_request_header,
)
from strom.protocol.generated.create_topics import CreateTopicsRequest
from strom.protocol.generated.fetch import FetchRequest
from strom.protocol.generated.metadata import MetadataRequest
from strom.protocol.generated.produce import ProduceRequest
from strom.server.connection import Connection
from strom.server.main import loop_factory
from strom.server.stream import ClientStream
from strom.testing.inprocess import open_broker

sys.path.insert(0, str(Path(__file__).resolve().parent))
from request_rate import (
    EPOCH_MARK,
    PRODUCE_V,
    SINGLE_CASES,
    FetchSpec,
    fetch_frame,
    one_record_batch,
    produce_frame,
)

CASES = SINGLE_CASES


async def serve(broker: Broker, frame: bytes) -> Any:
    header, r = parse_request_header(memoryview(frame)[4:])
    request = decode_request(header, r)
    response = await broker.handle(header, request)
    if response is not None:
        encode_response(header.api_key, header.api_version, header.correlation_id, response)
    return response


class _MemoryTransport:
    """The transport a ClientStream writes to: answers kept in memory."""

    def __init__(self, stream: ClientStream) -> None:
        self.stream = stream
        self.written = bytearray()
        self.waiter: asyncio.Future[None] | None = None
        self.closed = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.written += data
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 1) if name == "peername" else default

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.stream.connection_lost(None)


class ConnectionClient:
    """Frames through a real Connection over an in-memory transport."""

    def __init__(self, broker: Broker) -> None:
        async def on_connect(stream: ClientStream) -> None:
            await Connection(broker, stream).serve()

        self.stream = ClientStream(100 << 20, on_connect)
        self.transport = _MemoryTransport(self.stream)
        self.stream.connection_made(self.transport)  # type: ignore[arg-type]
        self.loop = asyncio.get_running_loop()

    async def request(self, frame: bytes) -> None:
        """Receive ``frame`` as the socket would, and wait for its answer's write."""
        t = self.transport
        t.waiter = self.loop.create_future()
        t.written.clear()
        view = memoryview(frame)
        while view:
            buf = self.stream.get_buffer(-1)
            n = min(len(buf), len(view))
            buf[:n] = view[:n]
            self.stream.buffer_updated(n)
            view = view[n:]
        await t.waiter

    def last_answer(self, frame: bytes) -> Any:
        header, _ = parse_request_header(memoryview(frame)[4:])
        body = memoryview(bytes(self.transport.written))[4:]
        return decode_response(header.api_key, header.api_version, body)[1]

    async def close(self) -> None:
        self.transport.close()
        await asyncio.sleep(0)


async def create(broker: Broker, name: str, partitions: int) -> None:
    t = CreateTopicsRequest.CreatableTopic(name=name, num_partitions=partitions)
    t.replication_factor = 1
    frame = _frame(CreateTopicsRequest(topics=[t], timeout_ms=30000), 19, 5)
    await serve(broker, frame)
    for _ in range(200):
        topic = broker.image.topic(name)
        if topic is not None and len(broker.replicas.partitions) >= partitions:
            return
        await asyncio.sleep(0.01)


def _frame(req: Any, api_key: int, version: int) -> bytes:
    from strom.protocol.frame import RequestHeader, encode_request

    return encode_request(RequestHeader(api_key, version, 1, "cost-bench"), req)


async def frames_for(broker: Broker, case: str, n: int) -> list[bytes]:
    if case == "metadata-none":
        return [_frame(MetadataRequest(topics=[]), 3, 9)] * n
    if case.startswith("produce"):
        await create(broker, case, 1)
        return [produce_frame(case, 1 if case == "produce-acks1" else -1)] * n
    parts = 1 if case == "fetch-1p" else 100
    await create(broker, case, parts)
    for p in range(parts):
        req = ProduceRequest(acks=1, timeout_ms=30000)
        pd = ProduceRequest.PartitionProduceData(index=p, records=one_record_batch())
        req.topic_data = [ProduceRequest.TopicProduceData(name=case, partition_data=[pd])]
        await serve(broker, _frame(req, 0, PRODUCE_V))
    logs = broker.replicas.partitions
    ends = [logs[TopicPartition(case, p)].log.log_end_offset for p in range(parts)]
    if case == "fetch-1p":
        return [fetch_frame(FetchSpec(case, [ends[0] - 1]).full(session_epoch=-1))] * n
    spec = FetchSpec(case, ends)
    if case == "fetch-100p":
        return [fetch_frame(spec.full(session_epoch=-1))] * n
    resp = await serve(broker, fetch_frame(spec.full(session_epoch=0)))
    if not resp.session_id:
        print("  no session created: full requests")
        return [fetch_frame(spec.full(session_epoch=-1))] * n
    req = FetchRequest(max_wait_ms=0, session_id=resp.session_id, session_epoch=EPOCH_MARK)
    out = []
    for epoch in range(1, n + 1):
        req.session_epoch = epoch
        out.append(fetch_frame(req))
    return out


def check_answer(case: str, response: Any) -> None:
    """The last answer carries no error (a failing setup would time error paths)."""
    if case == "metadata-none":
        if not response.brokers or response.topics:
            raise SystemExit(f"{case}: unexpected answer {response}")
        return
    if case.startswith("produce"):
        parts = [p for t in response.responses for p in t.partition_responses]
        want = 1
    else:
        parts = [p for t in response.responses for p in t.partitions]
        want = 1 if case == "fetch-1p" else (0 if case.endswith("session") else 100)
        if response.error_code:
            raise SystemExit(f"{case}: fetch answered error {response.error_code}")
    errors = [p.error_code for p in parts if p.error_code]
    if errors or len(parts) != want:
        raise SystemExit(f"{case}: {len(parts)} partitions answered (want {want}), errors {errors}")


async def run(case: str, n: int, profile: bool, work: Path, connection: bool = False) -> float:
    config = BrokerConfig({"log.dirs": str(work / case)})
    broker = open_broker(config)
    client = ConnectionClient(broker) if connection else None
    try:
        frames = await frames_for(broker, case, n)
        for f in frames[: n // 10]:  # warm-up
            await (serve(broker, f) if client is None else client.request(f))
        frames = frames[n // 10 :] if case.endswith("session") else frames
        prof = cProfile.Profile() if profile else None
        t0 = time.process_time()
        if prof is not None:
            prof.enable()
        response = None
        if client is None:
            for f in frames:
                response = await serve(broker, f)
        else:
            for f in frames:
                await client.request(f)
        if prof is not None:
            prof.disable()
        us = (time.process_time() - t0) * 1e6 / len(frames)
        if client is not None:
            response = client.last_answer(frames[-1])
            await client.close()
        check_answer(case, response)
        if prof is not None:
            top = int(os.environ.get("PROFILE_TOP", "25"))
            pstats.Stats(prof).sort_stats("tottime").print_stats(top)
        return us
    finally:
        broker.shutdown()


def _run_on(
    factory: Callable[[], asyncio.AbstractEventLoop] | None, coro: Coroutine[Any, Any, float]
) -> float:
    loop = factory() if factory is not None else asyncio.new_event_loop()
    try:
        return loop.run_until_complete(coro)
    finally:
        loop.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--cases", default=",".join(CASES))
    ap.add_argument("--requests", type=int, default=20_000)
    ap.add_argument("--repeat", type=int, default=3, help="best of this many runs")
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--connection", action="store_true", help="through a Connection too")
    a = ap.parse_args()
    factory = loop_factory() if a.connection else None
    with tempfile.TemporaryDirectory(prefix="strom-cost-") as tmp:
        for case in [c for c in a.cases.split(",") if c]:
            best = min(
                _run_on(factory, run(case, a.requests, a.profile, Path(tmp) / str(i), a.connection))
                for i in range(1 if a.profile else a.repeat)
            )
            print(f"{case:22} {best:8.1f} us CPU per request", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
