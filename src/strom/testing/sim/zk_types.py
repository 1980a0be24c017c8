"""The values of the ZooKeeper model (strom.testing.sim.zk): error codes, znode stats,
watch events and the operations of a multi."""

from __future__ import annotations

from dataclasses import dataclass, field

NONE_SESSION = 0


class ZkError(Exception):
    """A ZooKeeper error code."""


class NoNode(ZkError):
    pass


class NodeExists(ZkError):
    pass


class BadVersion(ZkError):
    pass


class NotEmpty(ZkError):
    pass


class NoChildrenForEphemerals(ZkError):
    pass


class SessionExpired(ZkError):
    pass


class RolledBack(ZkError):
    """In a failed multi: this operation was fine but nothing was applied."""


class RuntimeInconsistency(ZkError):
    """In a failed multi: an operation after the one that failed."""


@dataclass(frozen=True, slots=True)
class Stat:
    version: int
    cversion: int
    czxid: int
    mzxid: int
    ephemeral_owner: int
    num_children: int


@dataclass(slots=True)
class Znode:
    data: bytes
    czxid: int
    mzxid: int
    ephemeral_owner: int = NONE_SESSION
    version: int = 0
    cversion: int = 0
    children: set[str] = field(default_factory=set)

    def stat(self) -> Stat:
        return Stat(
            self.version,
            self.cversion,
            self.czxid,
            self.mzxid,
            self.ephemeral_owner,
            len(self.children),
        )


@dataclass(frozen=True, slots=True)
class WatchedEvent:
    kind: str  # "created", "deleted", "changed", "child"
    path: str


@dataclass(slots=True)
class Session:
    session_id: int
    timeout_ms: int
    last_heard_ms: int
    alive: bool = True


# -- multi operations ------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Check:
    path: str
    version: int


@dataclass(frozen=True, slots=True)
class Create:
    path: str
    data: bytes = b""
    ephemeral: bool = False
    sequential: bool = False


@dataclass(frozen=True, slots=True)
class SetData:
    path: str
    data: bytes
    version: int = -1


@dataclass(frozen=True, slots=True)
class Delete:
    path: str
    version: int = -1


Op = Check | Create | SetData | Delete
OpResult = str | Stat | None | ZkError
