"""strom.metadata.zk.session.ZkSession's interface over the ZooKeeper model, raising
kazoo's exceptions: the real ZkControllerStore runs on it without a server."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from kazoo import exceptions as ke
from kazoo.protocol.states import ZnodeStat

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
