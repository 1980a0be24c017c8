#!/usr/bin/env python3
"""Capture request frames from real clients, for the golden codec tests.

Usage: python tools/capture_golden.py OUT_DIR

Starts a strom broker whose advertised listener is a recording proxy, drives
kafka-python and confluent-kafka through it (metadata, create topic, produce
with each codec, fetch, list offsets), and writes the first request frame of
each (client, api, version) -- every Produce -- as
OUT_DIR/<client>-<api>-v<version>-<n>.bin.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import sys
import threading
from pathlib import Path

from strom.protocol.frame import parse_request_header

_SIZE = struct.Struct(">i")


def _pump(src: socket.socket, dst: socket.socket, frames: list[bytes] | None) -> None:
    buf = b""
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            dst.sendall(data)
            if frames is not None:
                buf += data
                while len(buf) >= 4:
                    size = _SIZE.unpack_from(buf)[0]
                    if len(buf) < 4 + size:
                        break
                    frames.append(buf[4 : 4 + size])
                    buf = buf[4 + size :]
    except OSError:
        pass
    finally:
        for s in (src, dst):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)


def proxy(target: tuple[str, int], frames: list[bytes], lsock: socket.socket) -> None:
    lsock.listen()

    def accept() -> None:
        while True:
            client, _ = lsock.accept()
            upstream = socket.create_connection(target)
            threading.Thread(target=_pump, args=(client, upstream, frames), daemon=True).start()
            threading.Thread(target=_pump, args=(upstream, client, None), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()


def main(argv: list[str]) -> int:
    import tempfile

    from strom.testing.broker import BrokerProcess, free_port

    out = Path(argv[0])
    out.mkdir(parents=True, exist_ok=True)
    frames: list[bytes] = []
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    local = int(lsock.getsockname()[1])
    broker_port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        broker = BrokerProcess(
            Path(tmp),
            {"advertised.listeners": f"PLAINTEXT://127.0.0.1:{local}"},
            port=broker_port,
        )
        with broker:
            proxy(("127.0.0.1", broker_port), frames, lsock)
            return _drive(f"127.0.0.1:{local}", frames, out)


def _drive(boot: str, frames: list[bytes], out: Path) -> int:

    from confluent_kafka import Consumer, Producer, TopicPartition
    from kafka import KafkaConsumer, KafkaProducer
    from kafka import TopicPartition as KTP

    runs = []
    start = 0
    for codec in ("none", "gzip", "snappy", "lz4", "zstd"):
        p = Producer({"bootstrap.servers": boot, "compression.type": codec, "linger.ms": 0})
        p.produce("golden", key=b"key", value=codec.encode() * 100, headers=[("h", b"v")])
        p.flush(10)
        runs.append(("librdkafka", start, len(frames)))
        start = len(frames)
    c = Consumer({"bootstrap.servers": boot, "group.id": "golden", "enable.auto.commit": False})
    c.assign([TopicPartition("golden", 0, 0)])
    c.poll(3)
    c.close()
    runs.append(("librdkafka", start, len(frames)))
    start = len(frames)
    for codec in (None, "gzip", "lz4", "zstd"):
        kp = KafkaProducer(bootstrap_servers=boot, compression_type=codec, enable_idempotence=False)
        kp.send("golden", key=b"key", value=b"kp" * 200, headers=[("h", b"v")]).get(10)
        kp.close()
    kc = KafkaConsumer(bootstrap_servers=boot, consumer_timeout_ms=2000)
    kc.assign([KTP("golden", 0)])
    kc.seek_to_beginning()
    list(kc)
    kc.close()
    runs.append(("kafka-python", start, len(frames)))
    seen: set[tuple[str, int, int]] = set()
    written = 0
    for client, lo, hi in runs:
        for frame in frames[lo:hi]:
            header, _ = parse_request_header(frame)
            key = (client, header.api_key, header.api_version)
            if key in seen and header.api_key != 0:
                continue
            seen.add(key)
            name = f"{client}-{header.api_key}-v{header.api_version}-{written}.bin"
            (out / name).write_bytes(frame)
            written += 1
    print(f"wrote {written} frames to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
