"""strom.metadata.zk.session.ZkSession's interface over the ZooKeeper model, raising
kazoo's exceptions: the real ZkControllerStore runs on it without a server."""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from types import SimpleNamespace
from typing import Any

from kazoo import exceptions as ke
from kazoo.protocol.states import EventType, KazooState, KeeperState, WatchedEvent, ZnodeStat
from kazoo.recipe.watchers import ChildrenWatch, DataWatch

from strom.testing.sim import zk

_ERRORS: dict[type[zk.ZkError], type[Exception]] = {
    zk.NoNode: ke.NoNodeError,
    zk.NodeExists: ke.NodeExistsError,
    zk.BadVersion: ke.BadVersionError,
    zk.NotEmpty: ke.NotEmptyError,
    zk.RolledBack: ke.RolledBackError,
    zk.RuntimeInconsistency: ke.RuntimeInconsistency,
    zk.SessionExpired: ke.SessionExpiredError,
    zk.NoChildrenForEphemerals: ke.NoChildrenForEphemeralsError,
}


def kazoo_error(exc: zk.ZkError) -> Exception:
    return _ERRORS[type(exc)](str(exc))


def kazoo_stat(s: zk.Stat) -> ZnodeStat:
    return ZnodeStat(
        s.czxid, s.mzxid, 0, 0, s.version, s.cversion, 0, s.ephemeral_owner, 0, s.num_children, 0
    )


@contextmanager
def _translated() -> Iterator[None]:
    try:
        yield
    except zk.ZkError as exc:
        raise kazoo_error(exc) from None


class FakeTransaction:
    def __init__(self) -> None:
        self.ops: list[zk.Op] = []

    def check(self, path: str, version: int) -> None:
        self.ops.append(zk.Check(path, version))

    def create(
        self, path: str, value: bytes = b"", ephemeral: bool = False, sequence: bool = False
    ) -> None:
        self.ops.append(zk.Create(path, value, ephemeral, sequence))

    def set_data(self, path: str, value: bytes, version: int = -1) -> None:
        self.ops.append(zk.SetData(path, value, version))

    def delete(self, path: str, version: int = -1) -> None:
        self.ops.append(zk.Delete(path, version))


class FakeSession:
    def __init__(self, model: zk.ZkModel, session_id: int) -> None:
        self.model = model
        self.session_id = session_id
        self.client: Any = None

    def get(self, path: str, watch: Any = None) -> tuple[bytes, Any]:
        with _translated():
            data, stat = self.model.get(self.session_id, path)
        return data, kazoo_stat(stat)

    def children(self, path: str, watch: Any = None) -> list[str]:
        with _translated():
            return self.model.children(self.session_id, path)

    def exists(self, path: str, watch: Any = None) -> Any:
        with _translated():
            stat = self.model.exists(self.session_id, path)
        return kazoo_stat(stat) if stat is not None else None

    def create(
        self,
        path: str,
        value: bytes = b"",
        *,
        ephemeral: bool = False,
        sequence: bool = False,
        makepath: bool = False,
    ) -> str:
        with _translated():
            return self.model.create(
                self.session_id,
                path,
                value,
                ephemeral=ephemeral,
                sequential=sequence,
                makepath=makepath,
            )

    def set(self, path: str, value: bytes, version: int = -1) -> Any:
        with _translated():
            return kazoo_stat(self.model.set(self.session_id, path, value, version))

    def delete(self, path: str, version: int = -1) -> None:
        with _translated():
            self.model.delete(self.session_id, path, version)

    def transaction(self) -> FakeTransaction:
        return FakeTransaction()

    def commit(self, tx: FakeTransaction) -> list[Any]:
        with _translated():
            results = self.model.multi(self.session_id, tx.ops)
        out: list[Any] = []
        for r in results:
            if isinstance(r, zk.ZkError):
                out.append(kazoo_error(r))
            elif isinstance(r, zk.Stat):
                out.append(kazoo_stat(r))
            else:
                out.append(True if r is None else r)
        return out


_EVENT_TYPES = {
    "created": EventType.CREATED,
    "deleted": EventType.DELETED,
    "changed": EventType.CHANGED,
    "child": EventType.CHILD,
}


class FakeKazooClient:
    """The part of KazooClient that kazoo's own ChildrenWatch and DataWatch use, over the
    model, so that their real code runs: their reads, the raw watches they set, and the
    connection state listeners. Callbacks run inline. :meth:`deliver` hands the model's
    watch events to the raw watches, as kazoo's connection does; :meth:`suspend` and
    :meth:`reconnect` play a connection loss as kazoo does (the raw watches are dropped
    with a NONE event and ZooKeeper forgets them with the connection; the listeners hear
    SUSPENDED, then CONNECTED)."""

    def __init__(self, model: zk.ZkModel, session_id: int) -> None:
        self.model = model
        self.session_id = session_id
        self.handler = SimpleNamespace(
            lock_object=threading.RLock,
            sleep_func=time.sleep,
            spawn=lambda fn, *args, **kwargs: fn(*args, **kwargs),
        )
        self.state_listeners: set[Callable[[str], Any]] = set()
        self._data_watchers: dict[str, set[Callable[[Any], None]]] = defaultdict(set)
        self._child_watchers: dict[str, set[Callable[[Any], None]]] = defaultdict(set)
        self.ChildrenWatch = partial(ChildrenWatch, self)
        self.DataWatch = partial(DataWatch, self)

    def retry(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        return fn(*args, **kwargs)

    def get_children(self, path: str, watch: Any = None) -> list[str]:
        with _translated():
            children = self.model.children(self.session_id, path, watch=watch is not None)
        if watch is not None:
            self._child_watchers[path].add(watch)
        return children

    def get(self, path: str, watch: Any = None) -> tuple[bytes, ZnodeStat]:
        with _translated():
            data, stat = self.model.get(self.session_id, path, watch=watch is not None)
        if watch is not None:
            self._data_watchers[path].add(watch)
        return data, kazoo_stat(stat)

    def exists(self, path: str, watch: Any = None) -> ZnodeStat | None:
        with _translated():
            stat = self.model.exists(self.session_id, path, watch=watch is not None)
        if watch is not None:
            self._data_watchers[path].add(watch)
        return kazoo_stat(stat) if stat is not None else None

    def add_listener(self, listener: Callable[[str], Any]) -> None:
        self.state_listeners.add(listener)

    def remove_listener(self, listener: Callable[[str], Any]) -> None:
        self.state_listeners.discard(listener)

    def deliver(self) -> None:
        """The model's watch events reach the raw watches (each fires once)."""
        for event in self.model.take_events(self.session_id):
            watchers = set()
            if event.kind in ("created", "changed", "deleted"):
                watchers |= self._data_watchers.pop(event.path, set())
            if event.kind in ("child", "deleted"):
                watchers |= self._child_watchers.pop(event.path, set())
            ev = WatchedEvent(_EVENT_TYPES[event.kind], KeeperState.CONNECTED, event.path)
            for watch in watchers:
                watch(ev)

    def suspend(self) -> None:
        watchers = [w for ws in self._data_watchers.values() for w in ws]
        watchers += [w for ws in self._child_watchers.values() for w in ws]
        self._data_watchers.clear()
        self._child_watchers.clear()
        for watch in watchers:
            watch(WatchedEvent(EventType.NONE, KeeperState.CONNECTING, None))
        self._state(KazooState.SUSPENDED)

    def reconnect(self) -> None:
        self.model.take_events(self.session_id)  # fired on the lost connection: gone
        self._state(KazooState.CONNECTED)

    def _state(self, state: str) -> None:
        for listener in list(self.state_listeners):
            if listener(state) is True:
                self.remove_listener(listener)
