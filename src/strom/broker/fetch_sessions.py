"""Incremental fetch sessions (KIP-227): Kafka's FetchSession, FetchSessionCache and
FetchManager, as plain logic (no IO, the time comes in as ``now_ms``).

A fetch names its session with (session_id, session_epoch):

- epoch -1 (FINAL): sessionless. A session_id names a session to close.
- epoch 0 (INITIAL): a full fetch; the session it names is closed, and the broker
  tries to create a new one holding every partition of the answer (session id 0
  in the answer when it does not).
- epoch > 0: an incremental fetch in session ``session_id``: FETCH_SESSION_ID_NOT_FOUND
  for an unknown session, INVALID_FETCH_SESSION_EPOCH unless the epoch is the one the
  session expects (it then expects the next), FETCH_SESSION_TOPIC_ID_ERROR when the
  request's version does not name topics the way the session was created (by id from
  v13). The request names only the partitions added or changed and the ones to
  forget; the broker reads every partition of the session and answers only those with
  records, a new high watermark or log start offset, an error, a diverging epoch or a
  preferred read replica. Partitions that returned records move to the end of the
  session, so that the byte limits are shared out in turn.

The cache holds at most ``max.incremental.fetch.session.cache.slots`` sessions. When
it is full a new session may evict (Kafka's tryEvict): the least recently used one
if unused for EVICTION_MS; else the least valuable evictable one if the new session is
worth more (a follower's session is privileged; then more partitions). A session is
evictable by a follower's if it is a consumer's or older than EVICTION_MS, by any
session only if older than EVICTION_MS (as of its last use).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable

from strom.protocol.errors import ErrorCode
from strom.protocol.generated.fetch import FetchRequest, FetchResponse

INVALID_SESSION_ID = 0
INITIAL_EPOCH = 0
FINAL_EPOCH = -1
EVICTION_MS = 120_000  # Kafka's MIN_INCREMENTAL_FETCH_SESSION_EVICTION_MS
_INT_MAX = 2**31 - 1

FetchPartition = FetchRequest.FetchPartition
PartitionData = FetchResponse.PartitionData
PartitionKey = tuple[bytes | str, int]  # (topic id, partition) from v13, else (name, partition)
TopicNames = Callable[[bytes], str | None]


def next_epoch(epoch: int) -> int:
    if epoch < 0:
        return FINAL_EPOCH
    return 1 if epoch == _INT_MAX else epoch + 1


class FetchItem:
    """One partition to read: its topic name (None: an unknown topic id), id and the
    fetch parameters (from the request, or cached by the session). A plain class, one
    per partition and request: mypyc compiles its ``__init__``, not a dataclass's."""

    __slots__ = ("cached", "req", "topic", "topic_id")

    def __init__(
        self,
        topic: str | None,
        topic_id: bytes,
        req: FetchPartition,
        cached: CachedPartition | None = None,  # in an incremental fetch: the session's entry
    ) -> None:
        self.topic = topic
        self.topic_id = topic_id
        self.req = req
        self.cached = cached


class CachedPartition(FetchItem):
    """A session's partition: what it last answered, and (a FetchItem whose ``cached``
    is itself) the item an incremental fetch reads, made once per session, not once
    per request."""

    __slots__ = ("high_watermark", "local_log_start_offset")

    def __init__(self, item: FetchItem, high_watermark: int, local_log_start_offset: int) -> None:
        super().__init__(item.topic, item.topic_id, item.req)
        self.cached = self
        self.high_watermark = high_watermark
        self.local_log_start_offset = local_log_start_offset

    def must_respond(self, out: PartitionData) -> bool:
        """Whether ``out`` goes in an incremental answer; remembers what it told."""
        must = bool(out.records)
        if self.high_watermark != out.high_watermark:
            self.high_watermark = out.high_watermark
            must = True
        if self.local_log_start_offset != out.log_start_offset:
            self.local_log_start_offset = out.log_start_offset
            must = True
        if out.error_code:
            self.high_watermark = -1  # answered again once the error is gone
            must = True
        return (
            must
            or out.preferred_read_replica >= 0
            or out.diverging_epoch.epoch >= 0
            or out.diverging_epoch.end_offset >= 0
        )


class FetchSession:
    __slots__ = (
        "cached_size",
        "creation_ms",
        "epoch",
        "evictable_by_all",
        "evictable_by_privileged",
        "id",
        "last_used_ms",
        "partitions",
        "privileged",
        "uses_topic_ids",
    )

    def __init__(
        self,
        session_id: int,
        privileged: bool,
        partitions: dict[PartitionKey, CachedPartition],
        uses_topic_ids: bool,
        now_ms: int,
    ) -> None:
        self.id = session_id
        self.privileged = privileged
        self.partitions = partitions  # in fetch order
        self.uses_topic_ids = uses_topic_ids
        self.creation_ms = self.last_used_ms = now_ms
        self.epoch = next_epoch(INITIAL_EPOCH)
        self.cached_size = -1
        self.evictable_by_all = self.evictable_by_privileged = False

    def evictable_key(self) -> tuple[bool, int, int]:
        return (self.privileged, self.cached_size, self.id)

    def update(
        self, items: Iterable[tuple[PartitionKey, FetchItem]], forget: Iterable[PartitionKey]
    ) -> None:
        for key, item in items:
            cached = self.partitions.get(key)
            if cached is None:
                self.partitions[key] = CachedPartition(item, -1, -1)
            else:
                cached.req = item.req
                if item.topic is not None:
                    cached.topic = item.topic
        for key in forget:
            self.partitions.pop(key, None)


class FetchSessionCache:
    """The broker's fetch sessions, bounded (see the module's doc for eviction)."""

    def __init__(
        self, max_entries: int, eviction_ms: int = EVICTION_MS, rng: random.Random | None = None
    ) -> None:
        self.max_entries = max_entries
        self.eviction_ms = eviction_ms
        self.sessions: dict[int, FetchSession] = {}
        self.evictions = 0
        self._random = rng or random.Random()

    def get(self, session_id: int) -> FetchSession | None:
        return self.sessions.get(session_id)

    def __len__(self) -> int:
        return len(self.sessions)

    def total_partitions(self) -> int:
        return sum(s.cached_size for s in self.sessions.values())

    def remove(self, session_id: int) -> FetchSession | None:
        return self.sessions.pop(session_id, None)

    def touch(self, session: FetchSession, now_ms: int) -> None:
        session.last_used_ms = now_ms
        session.cached_size = len(session.partitions)
        old = now_ms - session.creation_ms > self.eviction_ms
        session.evictable_by_privileged = old or not session.privileged
        session.evictable_by_all = old

    def maybe_create_session(
        self,
        now_ms: int,
        privileged: bool,
        uses_topic_ids: bool,
        partitions: dict[PartitionKey, CachedPartition],
    ) -> int:
        """The id of a new session holding ``partitions``, or INVALID_SESSION_ID when
        the cache is full and nothing may be evicted for it."""
        size = len(partitions)
        if len(self.sessions) >= self.max_entries and not self._try_evict(
            privileged, (privileged, size, 0), now_ms
        ):
            return INVALID_SESSION_ID
        session_id = self._new_session_id()
        session = FetchSession(session_id, privileged, partitions, uses_topic_ids, now_ms)
        self.sessions[session_id] = session
        self.touch(session, now_ms)
        return session_id

    def _new_session_id(self) -> int:
        while True:
            session_id = self._random.randint(1, _INT_MAX - 1)
            if session_id not in self.sessions:
                return session_id

    def _try_evict(self, privileged: bool, key: tuple[bool, int, int], now_ms: int) -> bool:
        if not self.sessions:
            return False
        stale = min(self.sessions.values(), key=lambda s: (s.last_used_ms, s.id))
        if now_ms - stale.last_used_ms > self.eviction_ms:
            return self._evict(stale)
        candidates = [
            s
            for s in self.sessions.values()
            if (s.evictable_by_privileged if privileged else s.evictable_by_all)
        ]
        if not candidates:
            return False
        least = min(candidates, key=FetchSession.evictable_key)
        if key < least.evictable_key():
            return False
        return self._evict(least)

    def _evict(self, session: FetchSession) -> bool:
        del self.sessions[session.id]
        self.evictions += 1
        return True


class FetchContext:
    """What one Fetch reads (``items``) and how its answer is made (:meth:`respond`):
    Kafka's SessionErrorContext, SessionlessFetchContext, FullFetchContext and
    IncrementalFetchContext in one class."""

    __slots__ = ("_cache", "_privileged", "_req_epoch", "error", "items", "keys", "session")

    def __init__(
        self,
        items: list[FetchItem],
        keys: list[PartitionKey],
        *,
        error: int = 0,
        cache: FetchSessionCache | None = None,
        session: FetchSession | None = None,
        privileged: bool = False,
        req_epoch: int = FINAL_EPOCH,
    ) -> None:
        self.items = items
        self.keys = keys
        self.error = error
        self.session = session
        self._cache = cache  # set for a full fetch that may create a session
        self._privileged = privileged
        self._req_epoch = req_epoch

    def respond(
        self, parts: list[PartitionData | None], uses_topic_ids: bool, now_ms: int
    ) -> tuple[int, int, list[tuple[FetchItem, PartitionData]]]:
        """(error code, session id, the partitions to answer) once ``parts`` (one per
        item, in order) were read; None for a session partition known to have nothing
        to tell (only in an incremental fetch)."""
        session = self.session
        if session is not None:
            if session.epoch != next_epoch(self._req_epoch):  # a duplicate request won
                return ErrorCode.INVALID_FETCH_SESSION_EPOCH, session.id, []
            return 0, session.id, self._changed(session, parts)
        pairs = [(item, out) for item, out in zip(self.items, parts, strict=True) if out]
        assert len(pairs) == len(parts), "only an incremental fetch skips partitions"
        if self._cache is None:
            return 0, INVALID_SESSION_ID, pairs
        cached = {
            key: CachedPartition(item, out.high_watermark, out.log_start_offset)
            for key, (item, out) in zip(self.keys, pairs, strict=True)
        }
        created = self._cache.maybe_create_session(now_ms, self._privileged, uses_topic_ids, cached)
        return 0, created, pairs

    def _changed(
        self, session: FetchSession, parts: list[PartitionData | None]
    ) -> list[tuple[FetchItem, PartitionData]]:
        kept = []
        partitions = session.partitions
        for key, item, out in zip(self.keys, self.items, parts, strict=True):
            if out is None:
                continue
            cached = partitions.get(key)
            if cached is None or not cached.must_respond(out):
                continue
            kept.append((item, out))
            if out.records:  # served: to the back of the line
                partitions[key] = partitions.pop(key)
        return kept


def new_context(
    cache: FetchSessionCache,
    version: int,
    req: FetchRequest,
    is_follower: bool,
    topic_names: TopicNames,
    now_ms: int,
) -> FetchContext:
    """Kafka's FetchManager.newContext for one Fetch request."""
    uses_ids = version >= 13
    session_id, epoch = (req.session_id, req.session_epoch) if version >= 7 else (0, FINAL_EPOCH)
    if epoch == FINAL_EPOCH:  # sessionless: no keys, no session to make
        if session_id != INVALID_SESSION_ID:
            cache.remove(session_id)  # a full fetch closes the session it names
        return FetchContext(_requested(req, uses_ids, topic_names, None), [])
    keys: list[PartitionKey] = []
    items = _requested(req, uses_ids, topic_names, keys)
    if epoch == INITIAL_EPOCH:
        if session_id != INVALID_SESSION_ID:
            cache.remove(session_id)  # a full fetch closes the session it names
        return FetchContext(items, keys, cache=cache, privileged=is_follower)
    session = cache.get(session_id)
    if session is None:
        return FetchContext([], [], error=ErrorCode.FETCH_SESSION_ID_NOT_FOUND)
    if session.epoch != epoch:
        return FetchContext([], [], error=ErrorCode.INVALID_FETCH_SESSION_EPOCH)
    if session.uses_topic_ids != uses_ids:
        return FetchContext([], [], error=ErrorCode.FETCH_SESSION_TOPIC_ID_ERROR)
    session.update(zip(keys, items, strict=True), _forgotten(req, uses_ids))
    if not session.partitions:
        cache.remove(session.id)
        return FetchContext(items, keys)
    cache.touch(session, now_ms)
    session.epoch = next_epoch(session.epoch)
    keys = list(session.partitions)
    if uses_ids:
        items = [_session_item(c, True, topic_names) for c in session.partitions.values()]
    else:  # by name: the session's partitions are the items
        items = list(session.partitions.values())
    return FetchContext(items, keys, session=session, req_epoch=epoch)


def _session_item(cached: CachedPartition, uses_ids: bool, topic_names: TopicNames) -> FetchItem:
    """The item to read: the session's partition itself, unless (by id) its topic's name
    changed. By id, the name is looked up every time: a topic deleted (and maybe created
    again under its name) is UNKNOWN_TOPIC_ID, never the new topic's partition."""
    if not uses_ids:
        return cached
    name = topic_names(cached.topic_id)
    if name is not None and name == cached.topic:
        return cached
    return FetchItem(name, cached.topic_id, cached.req, cached)


def _requested(
    req: FetchRequest, uses_ids: bool, topic_names: TopicNames, keys: list[PartitionKey] | None
) -> list[FetchItem]:
    """The request's partitions, in order; their session keys go to ``keys`` (None: a
    sessionless fetch, which needs none)."""
    out: list[FetchItem] = []
    for ft in req.topics:
        topic_key: bytes | str
        if uses_ids:
            name, topic_key = topic_names(ft.topic_id), ft.topic_id
        else:
            name = topic_key = ft.topic
        topic_id = ft.topic_id
        for fp in ft.partitions:
            out.append(FetchItem(name, topic_id, fp))
            if keys is not None:
                keys.append((topic_key, fp.partition))
    return out


def _forgotten(req: FetchRequest, uses_ids: bool) -> list[PartitionKey]:
    return [
        (ft.topic_id if uses_ids else ft.topic, p)
        for ft in req.forgotten_topics_data
        for p in ft.partitions
    ]
