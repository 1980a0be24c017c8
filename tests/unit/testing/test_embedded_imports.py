"""Issue 15 ("instant start"): an EmbeddedBroker imports what a single broker needs to
start and answer ApiVersions, and nothing else. The other APIs' handlers and codecs,
the group and transaction coordinators, the cluster, security, compression and log
cleaner code, and the code of a partition's log, are imported when first used. A
structural check in a fresh interpreter (what ``sys.modules`` holds), not a timed one."""

from __future__ import annotations

import subprocess
import sys

from strom.broker.handlers import HANDLER_MODULES

# Start a broker, send ApiVersions v0 and read the answer, stop; list sys.modules.
SCRIPT = r"""
import socket, struct, sys
from strom.testing import EmbeddedBroker

with EmbeddedBroker(memory=True) as broker:
    with socket.create_connection((broker.host, broker.port), timeout=30) as sock:
        sock.sendall(struct.pack(">ihhih4s", 14, 18, 0, 1, 4, b"test"))
        data = b""
        while len(data) < 4 or len(data) < 4 + struct.unpack(">i", data[:4])[0]:
            chunk = sock.recv(65536)
            assert chunk, "the broker closed the connection"
            data += chunk
    assert struct.unpack(">ih", data[4:10]) == (1, 0), data[:10]
    loaded = sorted(sys.modules)  # before stop, which removes the log directory (shutil)
print("\n".join(loaded))
"""

LAZY = {
    "strom.broker.api",  # imports every handler
    *(f"strom.broker.{name}" for name in HANDLER_MODULES if name != "api_versions"),
    "strom.broker.group_offsets",  # the offset APIs' adaptation, for groups.py
    # the authorizer, with authorizer.class.name only
    "strom.broker.authz",
    "strom.broker.authorizer",
    "strom.common.acl",
    # coordinators: with the first group or producer id
    "strom.coordinator.group.coordinator",
    "strom.coordinator.txn.coordinator",
    # a ZooKeeper cluster: its controller, peers and replica fetchers
    "strom.broker.cluster_member",
    "strom.broker.replica_fetcher",
    "strom.controller",
    "strom.metadata.zk",
    "kazoo",
    "strom.net.connection",
    # TLS and SASL
    "strom.net.security",
    "strom.net.sasl_client",
    "strom.common.sasl",
    "strom.common.scram",
    "strom.server.sasl_server",
    # compressed batches, compacted logs, metrics.listener
    "cramjam",
    "lz4",
    "zstandard",
    "gzip",
    "strom.storage.cleaner",
    "strom.server.metrics_http",
    "prometheus_client",
    # the command line; uuid imports platform
    "argparse",
    "uuid",
    # the log's code, with the first partition: log, segments, indexes, the record codec
    "strom.storage.log",
    "strom.storage.segment",
    "strom.storage.index",
    "strom.storage.producer_state",
    "strom.replication.partition",
    "strom.protocol.records",
    "strom.protocol.record_stream",
    "strom.common.crc",
    # made by the broker on first use: topic admin, transactions, producer ids, peers
    "strom.broker.topic_admin",
    "strom.broker.txn_runtime",
    "strom.broker.producer_ids",
    "strom.broker.fetcher_manager",
    "strom.common.assignment",
    # the standard library's modules strom's start no longer needs (each 0.5-4 ms)
    "dataclasses",
    "tempfile",
    "shutil",
    "random",
    "hashlib",
    "json",
    # strom.testing's other helpers
    "strom.testing.broker",
    "strom.testing.cluster",
    "strom.testing.zookeeper",
}


def test_embedded_broker_start_imports_nothing_lazy() -> None:
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, check=True, timeout=120
    ).stdout
    loaded = set(out.split())
    assert "strom.server.main" in loaded
    assert sorted(loaded & LAZY) == []
    codecs = {m for m in loaded if m.startswith("strom.protocol.generated.")}
    assert codecs == {"strom.protocol.generated.api_versions"}
