"""A broker-bound produce load: record batches encoded once, sent as fast as the broker
answers them.

librdkafka's producer costs about 1.3 us of CPU per record from Python (produce() and
its batching), so on this 2-core machine it tops out near 900,000 records/s of 100 B
whatever the broker; bench/produce_consume.py's librdkafka cases then measure the
client. This load generator takes the client out: Produce requests shaped as
librdkafka sends them (one batch per partition per request; non-idempotent; acks and
compression as asked) are encoded once before the clock starts, then sent over one
connection with up to five in flight (librdkafka's max.in.flight), each response
decoded and its error codes checked, until the asked number of records is in. At the
end the partitions' end offsets must add up to what was sent, so a broker that drops or
refuses records cannot look fast.

    python bench/produce_load.py --bootstrap 127.0.0.1:9092 --broker-pid PID \\
        --messages 1000000 --size 100 --acks 1 --compression lz4

bench/produce_consume.py runs it for each of its cases beside librdkafka. Figures only,
never a timed assertion.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import selectors
import socket
import struct
import time
from typing import Any

from request_rate import PRODUCE_V, Wire, create_topic, end_offsets

from strom.protocol.frame import RequestHeader, decode_response, encode_request
from strom.protocol.generated.produce import ProduceRequest
from strom.protocol.records import build_batch

CODECS = {"none": 0, "gzip": 1, "snappy": 2, "lz4": 3, "zstd": 4}
BATCH_BYTES = 100_000  # records per batch: about this many bytes of values
IN_FLIGHT = 5  # librdkafka's max.in.flight.requests.per.connection
_SIZE = struct.Struct(">i")


def cpu_s(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def produce_frame(
    topic: str, partitions: int, records: int, size: int, acks: int, codec: int
) -> bytes:
    """One Produce request: a batch of ``records`` records of ``size`` bytes per partition."""
    now = int(time.time() * 1000)
    rnd = random.Random(42)  # kafka-bench.py's "letters" payloads: 256 of random A-Z, cycled
    values = [bytes(rnd.choices(range(65, 91), k=size)) for _ in range(256)]
    batch = build_batch(
        [(None, values[i % 256], (), now) for i in range(records)], compression=codec
    )
    req = ProduceRequest(acks=acks, timeout_ms=30000)
    req.topic_data = [
        ProduceRequest.TopicProduceData(
            name=topic,
            partition_data=[
                ProduceRequest.PartitionProduceData(index=p, records=batch)
                for p in range(partitions)
            ],
        )
    ]
    return encode_request(RequestHeader(0, PRODUCE_V, 1, "produce-load"), req)


def run(
    bootstrap: str,
    pid: int | None,
    *,
    messages: int,
    size: int,
    acks: str,
    compression: str,
    partitions: int = 3,
    topic: str = "produce-load",
) -> dict[str, Any]:
    setup = Wire(bootstrap)
    try:
        create_topic(setup, topic, partitions)
        before = sum(end_offsets(setup, topic, partitions))
    finally:
        setup.close()
    per_batch = max(1, min(10_000, BATCH_BYTES // size))  # batch.num.messages caps at 10,000
    per_request = per_batch * partitions
    requests = -(-messages // per_request)
    acks_n = -1 if acks == "all" else int(acks)
    frame = produce_frame(topic, partitions, per_batch, size, acks_n, CODECS[compression])

    host, _, port = bootstrap.rpartition(":")
    sock = socket.create_connection((host, int(port)))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.setblocking(False)
    sel = selectors.DefaultSelector()
    sel.register(sock, selectors.EVENT_READ)
    cpu0 = cpu_s(pid) if pid else None
    start = time.perf_counter()
    sent = answered = errors = 0
    out = memoryview(b"")
    buf = bytearray()
    while answered < requests:
        while sent < requests and sent - answered < IN_FLIGHT and not out:
            out = memoryview(frame)
            sent += 1
        if out:
            try:
                n = sock.send(out)
                out = out[n:]
            except BlockingIOError:
                pass
        if sel.select(0 if out else 30) or not out:
            try:
                data = sock.recv(1 << 20)
            except BlockingIOError:
                continue
            if not data:
                raise ConnectionError("the broker closed the connection")
            buf += data
            while len(buf) >= 4:
                n = _SIZE.unpack_from(buf)[0]
                if len(buf) < 4 + n:
                    break
                _, resp = decode_response(0, PRODUCE_V, bytes(buf[4 : 4 + n]))
                del buf[: 4 + n]
                answered += 1
                errors += sum(
                    1 for t in resp.responses for p in t.partition_responses if p.error_code
                )
    elapsed = time.perf_counter() - start
    cpu = cpu_s(pid) - cpu0 if pid and cpu0 is not None else None
    sock.close()
    check = Wire(bootstrap)
    try:
        appended = sum(end_offsets(check, topic, partitions)) - before
    finally:
        check.close()
    records = requests * per_request
    return {
        "load": "encoded-once",
        "messages": records,
        "size": size,
        "acks": acks,
        "compression": compression,
        "records_per_batch": per_batch,
        "produce_msgs_s": round(records / elapsed),
        "produce_MB_s": round(records * size / elapsed / 1e6, 1),
        "broker_cpu_produce_s": round(cpu, 2) if cpu is not None else None,
        "errors": errors,
        "appended": appended,
        # the reference broker's latest offsets lag by a batch less one record (its
        # ListOffsets answers the last batch's base offset + 1); counted, not failed on
        "ok": errors == 0 and records - partitions * (per_batch - 1) <= appended <= records,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--broker-pid", type=int, default=None)
    ap.add_argument("--messages", type=int, default=1_000_000)
    ap.add_argument("--size", type=int, default=100)
    ap.add_argument("--acks", default="1", choices=["1", "all"])
    ap.add_argument("--compression", default="none", choices=sorted(CODECS))
    ap.add_argument("--topic", default="produce-load")
    a = ap.parse_args()
    res = run(
        a.bootstrap,
        a.broker_pid,
        messages=a.messages,
        size=a.size,
        acks=a.acks,
        compression=a.compression,
        topic=a.topic,
    )
    print("RESULT " + json.dumps(res), flush=True)
    return 0 if res["ok"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
