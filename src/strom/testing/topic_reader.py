"""Read a topic back and assert on it: what a test checks after its code produced.

:class:`TopicReader` reads every partition of a topic from its log start offset to its
end (the high watermark, or the last stable offset with ``read_committed``) with strom's
own client, without a consumer group, so reading changes nothing on the broker. Records
come back as :class:`strom.testing.records.Rec`, the type every check of
:mod:`strom.testing.records` takes, ordered by partition then offset.

    reader = TopicReader("127.0.0.1:9092")
    reader.assert_values("orders", [b"a", b"b"])            # exactly these, in this order
    records = reader.read("orders", min_records=100)        # wait until 100 are there
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from strom.common.types import TopicPartition
from strom.testing.records import Rec

if TYPE_CHECKING:
    from strom.client.sync import Admin, PartitionReader

__all__ = ["TopicReader", "read_topic"]

DEFAULT_TIMEOUT_S = 10.0
POLL_INTERVAL_S = 0.05
READ_COMMITTED = 1


class TopicReader:
    """Reads topics of the cluster at ``bootstrap``; a context manager (or call close())."""

    def __init__(self, bootstrap: str, config: Mapping[str, Any] | None = None) -> None:
        self.bootstrap = bootstrap
        self.config: dict[str, Any] = {"bootstrap.servers": bootstrap, **(config or {})}
        self._admin: Admin | None = None
        self._reader: PartitionReader | None = None

    def __enter__(self) -> TopicReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        for client in (self._reader, self._admin):
            if client is not None:
                client.close()
        self._admin = self._reader = None

    def _clients(self) -> tuple[Admin, PartitionReader]:
        from strom.client.sync import Admin, PartitionReader

        if self._admin is None:
            self._admin = Admin(dict(self.config))
        if self._reader is None:
            self._reader = PartitionReader(dict(self.config))
        return self._admin, self._reader

    # -- reading -------------------------------------------------------------------
    def read(
        self,
        topic: str,
        *,
        min_records: int = 0,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        read_committed: bool = False,
    ) -> list[Rec]:
        """Every record of ``topic`` from the start of each partition to its end; with
        ``min_records``, waits (up to ``timeout_s``) until at least that many are there.
        Raises AssertionError when they are not there in time."""
        admin, reader = self._clients()
        tps = self._partitions(admin, topic, timeout_s)
        deadline = time.monotonic() + timeout_s
        positions = self._log_starts(admin, tps)
        out: dict[TopicPartition, list[Rec]] = {tp: [] for tp in tps}
        while True:
            ends = admin.log_end_offsets(tps, isolation_level=1 if read_committed else 0)
            self._read_to(reader, positions, ends, out)
            count = sum(len(recs) for recs in out.values())
            if count >= min_records:
                return [rec for tp in tps for rec in out[tp]]
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"topic {topic!r} has {count} records after {timeout_s} s; "
                    f"expected at least {min_records}"
                )
            time.sleep(POLL_INTERVAL_S)

    def values(self, topic: str, **kwargs: Any) -> list[bytes | None]:
        """The values of :meth:`read`, by partition then offset."""
        return [rec.value for rec in self.read(topic, **kwargs)]

    def keys(self, topic: str, **kwargs: Any) -> list[bytes | None]:
        """The keys of :meth:`read`, by partition then offset."""
        return [rec.key for rec in self.read(topic, **kwargs)]

    # -- assertions ----------------------------------------------------------------
    def assert_values(
        self,
        topic: str,
        expected: Sequence[bytes | str | None],
        *,
        ordered: bool = True,
        timeout_s: float = DEFAULT_TIMEOUT_S,
    ) -> list[Rec]:
        """The topic holds exactly the values ``expected`` (str encoded as UTF-8): in
        this order (by partition then offset) unless ``ordered`` is False. Waits up to
        ``timeout_s`` for them to arrive; the records read are returned."""
        want = [_as_bytes(v) for v in expected]
        records = self.read(topic, min_records=len(want), timeout_s=timeout_s)
        got = [rec.value for rec in records]
        if ordered:
            assert got == want, _difference(topic, want, got)
        else:
            assert sorted(got, key=_sort_key) == sorted(want, key=_sort_key), _difference(
                topic, want, got
            )
        return records

    def assert_records(
        self,
        topic: str,
        expected: Iterable[tuple[bytes | str | None, bytes | str | None]],
        *,
        timeout_s: float = DEFAULT_TIMEOUT_S,
    ) -> list[Rec]:
        """The topic holds exactly these (key, value) pairs, each partition in order
        (pairs with one key land in one partition); the records read are returned."""
        want = [(_as_bytes(k), _as_bytes(v)) for k, v in expected]
        records = self.read(topic, min_records=len(want), timeout_s=timeout_s)
        got = [(rec.key, rec.value) for rec in records]
        by_key_want: dict[bytes | None, list[bytes | None]] = {}
        by_key_got: dict[bytes | None, list[bytes | None]] = {}
        for pairs, into in ((want, by_key_want), (got, by_key_got)):
            for key, value in pairs:
                into.setdefault(key, []).append(value)
        assert by_key_got == by_key_want, _difference(topic, want, got)
        return records

    def assert_empty(self, topic: str) -> None:
        """The topic has no records."""
        records = self.read(topic)
        assert not records, f"topic {topic!r} is not empty: {len(records)} records"

    # -- internals -----------------------------------------------------------------
    @staticmethod
    def _partitions(admin: Admin, topic: str, timeout_s: float) -> list[TopicPartition]:
        deadline = time.monotonic() + timeout_s
        while True:
            described = admin.describe_topics([topic]).get(topic)
            if described is not None and described.partitions:
                return [TopicPartition(topic, p.partition) for p in described.partitions]
            if time.monotonic() > deadline:
                raise AssertionError(f"topic {topic!r} does not exist")
            time.sleep(POLL_INTERVAL_S)

    @staticmethod
    def _log_starts(admin: Admin, tps: list[TopicPartition]) -> dict[TopicPartition, int]:
        from strom.client.admin_types import OffsetSpec

        found = admin.list_offsets({tp: OffsetSpec.EARLIEST for tp in tps})
        return {tp: found[tp].offset for tp in tps}

    @staticmethod
    def _read_to(
        reader: PartitionReader,
        positions: dict[TopicPartition, int],
        ends: Mapping[TopicPartition, int],
        out: dict[TopicPartition, list[Rec]],
    ) -> None:
        """Fetch every partition from its position up to ``ends`` (positions advance);
        returns early when a round of fetches moves no position (read() tries again)."""
        while pending := {tp: at for tp, at in positions.items() if at < ends[tp]}:
            for tp, fetched in reader.fetch_many(pending, max_wait_ms=100).items():
                if fetched.error_code:
                    from strom.client.errors import raise_for

                    raise_for(fetched.error_code, f"reading {tp}")
                for r in fetched.records:
                    if r.offset < ends[tp]:
                        out[tp].append(
                            Rec(tp.partition, r.offset, r.key, r.value, r.headers, r.timestamp)
                        )
                positions[tp] = min(max(fetched.next_offset, positions[tp]), ends[tp])
            if all(positions[tp] == at for tp, at in pending.items()):
                return


def read_topic(bootstrap: str, topic: str, **kwargs: Any) -> list[Rec]:
    """Every record of ``topic`` (see :meth:`TopicReader.read`)."""
    with TopicReader(bootstrap) as reader:
        return reader.read(topic, **kwargs)


def _as_bytes(value: bytes | str | None) -> bytes | None:
    return value.encode() if isinstance(value, str) else value


def _sort_key(value: bytes | None) -> tuple[bool, bytes]:
    return (value is not None, value or b"")


def _difference(topic: str, want: Sequence[object], got: Sequence[object]) -> str:
    lines = [f"topic {topic!r}: expected {len(want)} records, read {len(got)}"]
    for i in range(max(len(want), len(got))):
        w = want[i] if i < len(want) else "(none)"
        g = got[i] if i < len(got) else "(none)"
        if w != g:
            lines.append(f"  #{i}: expected {w!r}, read {g!r}")
        if len(lines) > 20:
            lines.append("  ...")
            break
    return "\n".join(lines)
