"""Start-up checks, log-directory locks, broker ids, listeners and checkpoints.

Each test here failed before its fix: broker.id=0 became node 1; a second broker
ran on the same log.dirs and lost the first one's records; only the first
listener was bound; a log start offset moved by DeleteRecords fell back after
kill -9 (checkpoints were written only at clean shutdown); accepted-and-ignored
settings went unnoticed.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from strom.protocol.generated.delete_records import DeleteRecordsRequest
from strom.protocol.generated.metadata import MetadataRequest
from strom.testing import BrokerFactory, BrokerProcess
from strom.testing.broker import free_port
from strom.testing.kafka import create_topic, produce_acked, read_all, watermarks
from strom.testing.wire import RawClient

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("require_strom")]


def run_broker(
    tmp_path: Path, *overrides: str, timeout_s: float = 20
) -> subprocess.CompletedProcess[str]:
    """Run `strom broker` expecting it to exit (a refused start)."""
    argv = [sys.executable, "-m", "strom", "broker"]
    settings = {
        "log.dirs": str(tmp_path / "log"),
        "listeners": f"PLAINTEXT://127.0.0.1:{free_port()}",
    }
    for item in overrides:
        key, _, value = item.partition("=")
        settings[key] = value
    for key, value in settings.items():
        argv += ["--override", f"{key}={value}"]
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout_s, check=False)


def metadata(bootstrap: str, version: int = 12) -> object:
    with RawClient(bootstrap) as c:
        return c.request(MetadataRequest(topics=None), version)


def test_broker_id_zero_stays_zero(broker_factory: BrokerFactory) -> None:
    broker = broker_factory({"broker.id": "0"})
    resp = metadata(broker.bootstrap)
    assert [b.node_id for b in resp.brokers] == [0]  # type: ignore[attr-defined]
    assert resp.controller_id == 0  # type: ignore[attr-defined]
    broker_factory({"node.id": "0"})  # node.id=0 too


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("broker.id=-5", "broker.id: invalid value -5: a broker id must be 0 or more"),
        ("node.id=-2", "node.id: invalid value -2"),
        ("process.roles=broker", "process.roles: strom has no KRaft mode"),
        ("listeners=PLAINTEXT://127.0.0.1:9,PLAINTEXT://127.0.0.1:10", "different name"),
        ("listeners=SSL://127.0.0.1:0", "ssl.keystore.location: a TLS listener needs a key store"),
        (
            "listeners=SASL_PLAINTEXT://127.0.0.1:0",
            "GSSAPI (Kerberos) is not supported by strom",
        ),
        ("listeners=NOPE://127.0.0.1:0", "No security protocol defined for listener NOPE"),
    ],
)
def test_bad_settings_are_refused_at_start(tmp_path: Path, setting: str, message: str) -> None:
    done = run_broker(tmp_path, setting)
    assert done.returncode == 1, done.stderr
    assert message in done.stderr
    assert "Traceback" not in done.stderr


def test_log_dirs_problems_name_the_setting(tmp_path: Path) -> None:
    afile = tmp_path / "afile"
    afile.write_text("x")
    done = run_broker(tmp_path, f"log.dirs={afile}")
    assert done.returncode == 1
    assert f"log.dirs: {afile} is a file, not a directory" in done.stderr
    done = run_broker(tmp_path, "log.dirs=/proc/strom-cannot-exist")
    assert done.returncode == 1
    assert "log.dirs: /proc/strom-cannot-exist cannot be created:" in done.stderr


def test_settings_without_effect_are_named_at_start(broker_factory: BrokerFactory) -> None:
    broker = broker_factory({"num.io.threads": "16"})
    assert "num.io.threads is set but has no effect" in broker.log_path.read_text()


def test_a_second_broker_on_the_same_log_dir_is_refused(
    broker_factory: BrokerFactory, tmp_path: Path, topic_name: str
) -> None:
    first = broker_factory()
    create_topic(first.bootstrap, topic_name, 1)
    acked = produce_acked(first.bootstrap, topic_name, [(0, None, b"first")])
    before = sorted(p.name for p in first.log_dir.rglob("*"))
    second = BrokerProcess(tmp_path / "second", {"log.dirs": str(first.log_dir)})
    with pytest.raises(Exception, match="exited"):
        second.start()
    assert "Failed to acquire lock on file .lock" in second.log_path.read_text()
    # The refused broker wrote nothing into the directory, and the first keeps serving.
    assert sorted(p.name for p in first.log_dir.rglob("*")) == before
    assert [r.value for r in read_all(first.bootstrap, topic_name, 1)] == [a.value for a in acked]


def test_a_port_in_use_fails_before_the_log_dir_is_touched(tmp_path: Path) -> None:
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = run_broker(tmp_path, f"listeners=PLAINTEXT://127.0.0.1:{port}")
    assert done.returncode == 1
    assert "cannot bind" in done.stderr
    log_dir = tmp_path / "log"
    assert not (log_dir / ".kafka_cleanshutdown").exists()
    assert not (log_dir / "meta.properties").exists()


def test_every_listener_is_bound_and_metadata_answers_per_listener(
    broker_factory: BrokerFactory,
) -> None:
    internal, external = free_port(), free_port()
    broker = broker_factory(
        {
            "listeners": f"INTERNAL://127.0.0.1:{internal},EXTERNAL://127.0.0.1:{external}",
            "advertised.listeners": f"INTERNAL://127.0.0.1:{internal},EXTERNAL://localhost:{external}",
            "listener.security.protocol.map": "INTERNAL:PLAINTEXT,EXTERNAL:PLAINTEXT",
            "inter.broker.listener.name": "INTERNAL",
        },
        port=internal,
    )
    inside = metadata(f"127.0.0.1:{internal}")
    outside = metadata(f"127.0.0.1:{external}")
    assert [(b.host, b.port) for b in inside.brokers] == [("127.0.0.1", internal)]  # type: ignore[attr-defined]
    assert [(b.host, b.port) for b in outside.brokers] == [("localhost", external)]  # type: ignore[attr-defined]
    assert broker.is_running()


def test_deleted_records_stay_deleted_after_kill_9(
    broker_factory: BrokerFactory, topic_name: str
) -> None:
    # Checkpoint intervals far longer than the test: only the write that DeleteRecords
    # makes before answering can keep the new log start offset.
    broker = broker_factory(
        {
            "log.flush.start.offset.checkpoint.interval.ms": "3600000",
            "log.flush.offset.checkpoint.interval.ms": "3600000",
        }
    )
    create_topic(broker.bootstrap, topic_name, 1)
    produce_acked(broker.bootstrap, topic_name, [(0, None, f"v{i}".encode()) for i in range(10)])
    R = DeleteRecordsRequest
    with RawClient(broker.bootstrap) as c:
        resp = c.request(
            R(
                topics=[R.DeleteRecordsTopic(topic_name, [R.DeleteRecordsPartition(0, 6)])],
                timeout_ms=5000,
            ),
            2,
        )
    assert resp.topics[0].partitions[0].error_code == 0
    assert resp.topics[0].partitions[0].low_watermark == 6
    broker.kill()
    broker.start()
    assert watermarks(broker.bootstrap, topic_name, 0)[0] == 6
    assert [r.value for r in read_all(broker.bootstrap, topic_name, 1)] == [
        f"v{i}".encode() for i in range(6, 10)
    ]


def test_high_watermark_checkpoint_is_written_periodically(
    broker_factory: BrokerFactory, topic_name: str
) -> None:
    broker = broker_factory({"replica.high.watermark.checkpoint.interval.ms": "200"})
    create_topic(broker.bootstrap, topic_name, 1)
    produce_acked(broker.bootstrap, topic_name, [(0, None, b"x")] * 3)
    path = broker.log_dir / "replication-offset-checkpoint"
    deadline = time.monotonic() + 10
    while f"{topic_name} 0 3" not in (path.read_text() if path.exists() else ""):
        assert time.monotonic() < deadline, "the high watermark checkpoint was not written"
        time.sleep(0.05)
