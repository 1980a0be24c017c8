"""An in-memory model of ZooKeeper's data model and sessions, for the controller's
unit tests and the deterministic simulation. No IO, no clock: time is passed in.

What it keeps of ZooKeeper (see /work/shared/zookeeper.md):

- znodes with data, a data version (bumped by every set), a child version, the
  zxid that created them (czxid: Kafka's broker epoch) and, for ephemerals, the
  owning session; a parent must exist; a node with children cannot be deleted;
  sequential names take the parent's child version, zero-padded to 10 digits;
- sessions with a timeout: a session not heard from within its timeout expires
  (:meth:`ZkModel.expire_sessions`), its ephemerals are deleted and its watches
  dropped; a call on an expired session raises :class:`SessionExpired`;
- one-shot watches (data watches from get/exists, child watches from children):
  a change queues one :class:`WatchedEvent` for the session that set the watch and
  forgets the watch; the owner drains them with :meth:`ZkModel.take_events`;
- ``multi``: all operations or none; on failure the operations before the failing
  one answer :class:`RolledBack`, the failing one its error, the later ones
  :class:`RuntimeInconsistency` (as ZooKeeper's DataTree does).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from typing import TypeVar

from strom.testing.sim.zk_types import (
    NONE_SESSION,
    BadVersion,
    Check,
    Create,
    Delete,
    NoChildrenForEphemerals,
    NodeExists,
    NoNode,
    NotEmpty,
    Op,
    OpResult,
    RolledBack,
    RuntimeInconsistency,
    Session,
    SessionExpired,
    SetData,
    Stat,
    WatchedEvent,
    ZkError,
    Znode,
)

R = TypeVar("R")
__all__ = [
    "NONE_SESSION",
    "BadVersion",
    "Check",
    "Create",
    "Delete",
    "NoChildrenForEphemerals",
    "NoNode",
    "NodeExists",
    "NotEmpty",
    "Op",
    "OpResult",
    "RolledBack",
    "RuntimeInconsistency",
    "SessionExpired",
    "SetData",
    "Stat",
    "WatchedEvent",
    "ZkError",
    "ZkModel",
]


def parent_of(path: str) -> str:
    head = path.rsplit("/", 1)[0]
    return head or "/"


def name_of(path: str) -> str:
    return path.rsplit("/", 1)[1]


class ZkModel:
    def __init__(self) -> None:
        self.zxid = 0
        self.nodes: dict[str, Znode] = {"/": Znode(b"", 0, 0)}
        self.sessions: dict[int, Session] = {}
        self._next_session = 0x1000
        self._data_watches: dict[str, set[int]] = {}
        self._child_watches: dict[str, set[int]] = {}
        self._events: dict[int, list[WatchedEvent]] = {}
        # within an operation: how to undo it, and the watches it fires if it stays
        self._undo: list[Callable[[], None]] = []
        self._fired: list[tuple[str, str]] = []

    # -- sessions ----------------------------------------------------------------------
    def open_session(self, timeout_ms: int, now_ms: int) -> int:
        self._next_session += 1
        sid = self._next_session
        self.sessions[sid] = Session(sid, timeout_ms, now_ms)
        return sid

    def touch(self, session_id: int, now_ms: int) -> bool:
        """A heartbeat; False when the session is gone."""
        s = self.sessions.get(session_id)
        if s is None or not s.alive:
            return False
        s.last_heard_ms = max(s.last_heard_ms, now_ms)
        return True

    def is_alive(self, session_id: int) -> bool:
        s = self.sessions.get(session_id)
        return s is not None and s.alive

    def expire_sessions(self, now_ms: int) -> list[int]:
        """Expire the sessions not heard from within their timeout; their ids."""
        expired = [
            sid
            for sid, s in sorted(self.sessions.items())
            if s.alive and now_ms - s.last_heard_ms > s.timeout_ms
        ]
        for sid in expired:
            self.close_session(sid)
        return expired

    def close_session(self, session_id: int) -> None:
        s = self.sessions.get(session_id)
        if s is None or not s.alive:
            return
        s.alive = False
        owned = sorted(
            (p for p, n in self.nodes.items() if n.ephemeral_owner == session_id),
            key=lambda p: -p.count("/"),
        )
        for path in owned:
            self._run(partial(self._delete, path, -1))
        for watches in (*self._data_watches.values(), *self._child_watches.values()):
            watches.discard(session_id)
        self._events.pop(session_id, None)

    def _require(self, session_id: int) -> None:
        if session_id != NONE_SESSION and not self.is_alive(session_id):
            raise SessionExpired(f"session 0x{session_id:x} expired")

    def take_events(self, session_id: int) -> list[WatchedEvent]:
        return self._events.pop(session_id, [])

    def pending_events(self, session_id: int) -> bool:
        return bool(self._events.get(session_id))

    def sessions_with_events(self) -> list[int]:
        return sorted(sid for sid, events in self._events.items() if events)

    # -- reads -------------------------------------------------------------------------
    def _node(self, path: str) -> Znode:
        node = self.nodes.get(path)
        if node is None:
            raise NoNode(path)
        return node

    def get(self, session_id: int, path: str, watch: bool = False) -> tuple[bytes, Stat]:
        self._require(session_id)
        node = self._node(path)
        if watch:
            self._data_watches.setdefault(path, set()).add(session_id)
        return node.data, node.stat()

    def exists(self, session_id: int, path: str, watch: bool = False) -> Stat | None:
        self._require(session_id)
        if watch:
            self._data_watches.setdefault(path, set()).add(session_id)
        node = self.nodes.get(path)
        return node.stat() if node is not None else None

    def children(self, session_id: int, path: str, watch: bool = False) -> list[str]:
        self._require(session_id)
        node = self._node(path)
        if watch:
            self._child_watches.setdefault(path, set()).add(session_id)
        return sorted(node.children)

    # -- writes ------------------------------------------------------------------------
    def create(
        self,
        session_id: int,
        path: str,
        data: bytes = b"",
        *,
        ephemeral: bool = False,
        sequential: bool = False,
        makepath: bool = False,
    ) -> str:
        self._require(session_id)
        if makepath:
            self.ensure_path(session_id, parent_of(path))
        op = Create(path, data, ephemeral, sequential)
        return self._run(partial(self._create, session_id, op))

    def ensure_path(self, session_id: int, path: str) -> None:
        self._require(session_id)
        parts = [p for p in path.split("/") if p]
        for i in range(1, len(parts) + 1):
            sub = "/" + "/".join(parts[:i])
            if sub not in self.nodes:
                self._run(partial(self._create, NONE_SESSION, Create(sub)))

    def set(self, session_id: int, path: str, data: bytes, version: int = -1) -> Stat:
        self._require(session_id)
        return self._run(partial(self._set, path, data, version))

    def delete(self, session_id: int, path: str, version: int = -1) -> None:
        self._require(session_id)
        self._run(lambda: self._delete(path, version))

    def multi(self, session_id: int, ops: Sequence[Op]) -> list[OpResult]:
        """Apply ``ops`` atomically; the result (or error) of each."""
        self._require(session_id)
        self._undo, self._fired = [], []
        results: list[OpResult] = []
        failed_at = -1
        for i, op in enumerate(ops):
            try:
                results.append(self._apply(session_id, op))
            except ZkError as exc:
                results.append(exc)
                failed_at = i
                break
        if failed_at < 0:
            self._commit()
            return results
        self._rollback()
        out: list[OpResult] = [RolledBack(op.path) for op in ops[:failed_at]]
        out.append(results[failed_at])
        out += [RuntimeInconsistency(op.path) for op in ops[failed_at + 1 :]]
        return out

    # -- the machinery -----------------------------------------------------------------
    def _apply(self, session_id: int, op: Op) -> OpResult:
        if isinstance(op, Check):
            node = self._node(op.path)
            if op.version != -1 and node.version != op.version:
                raise BadVersion(op.path)
            return None
        if isinstance(op, Create):
            return self._create(session_id, op)
        if isinstance(op, SetData):
            return self._set(op.path, op.data, op.version)
        self._delete(op.path, op.version)
        return None

    def _run(self, fn: Callable[[], R]) -> R:
        self._undo, self._fired = [], []
        try:
            result = fn()
        except ZkError:
            self._rollback()
            raise
        self._commit()
        return result

    def _rollback(self) -> None:
        for undo in reversed(self._undo):
            undo()
        self._undo, self._fired = [], []

    def _commit(self) -> None:
        fired, self._undo, self._fired = self._fired, [], []
        for kind, path in fired:
            if kind == "child":
                sids = self._child_watches.pop(path, set())
            else:
                sids = self._data_watches.pop(path, set())
                if kind == "deleted":  # the node's child watches fire too
                    sids |= self._child_watches.pop(path, set())
            for sid in sorted(sids):
                self._events.setdefault(sid, []).append(WatchedEvent(kind, path))

    def _next_zxid(self) -> int:
        self.zxid += 1
        zxid = self.zxid

        def undo() -> None:
            self.zxid = zxid - 1

        self._undo.append(undo)
        return zxid

    def _create(self, session_id: int, op: Create) -> str:
        parent = self.nodes.get(parent_of(op.path))
        if parent is None:
            raise NoNode(parent_of(op.path))
        if parent.ephemeral_owner != NONE_SESSION:
            raise NoChildrenForEphemerals(op.path)
        path = op.path + (f"{parent.cversion:010d}" if op.sequential else "")
        if path in self.nodes:
            raise NodeExists(path)
        zxid = self._next_zxid()
        owner = session_id if op.ephemeral else NONE_SESSION
        self.nodes[path] = Znode(op.data, zxid, zxid, owner)
        name = name_of(path)
        parent.children.add(name)
        parent.cversion += 1

        def undo() -> None:
            del self.nodes[path]
            parent.children.discard(name)
            parent.cversion -= 1

        self._undo.append(undo)
        self._fired += [("created", path), ("child", parent_of(path))]
        return path

    def _set(self, path: str, data: bytes, version: int) -> Stat:
        node = self._node(path)
        if version != -1 and node.version != version:
            raise BadVersion(path)
        old = (node.data, node.version, node.mzxid)
        node.data, node.version, node.mzxid = data, node.version + 1, self._next_zxid()

        def undo() -> None:
            node.data, node.version, node.mzxid = old

        self._undo.append(undo)
        self._fired.append(("changed", path))
        return node.stat()

    def _delete(self, path: str, version: int) -> None:
        node = self._node(path)
        if version != -1 and node.version != version:
            raise BadVersion(path)
        if node.children:
            raise NotEmpty(path)
        parent = self.nodes[parent_of(path)]
        del self.nodes[path]
        parent.children.discard(name_of(path))
        parent.cversion += 1
        self._next_zxid()

        def undo() -> None:
            self.nodes[path] = node
            parent.children.add(name_of(path))
            parent.cversion -= 1

        self._undo.append(undo)
        self._fired += [("deleted", path), ("child", parent_of(path))]
