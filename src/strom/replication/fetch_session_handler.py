"""The fetching side of incremental fetch sessions (KIP-227): Kafka's
FetchSessionHandler, for a replica fetcher following one leader.

Each request names the session and its epoch. A full request (epoch 0) names every
partition and asks for a new session; once the leader created one, each request is
incremental: it names only the partitions added or whose fetch parameters changed
(a follower's fetch offset moves with every append) and forgets the ones removed,
and the answer holds only the partitions with news. A session error (the leader
evicted it, or an epoch went astray) and a failed connection start over with a full
request.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from strom.common.types import TopicPartition
from strom.protocol.errors import ErrorCode
from strom.protocol.generated.fetch import FetchRequest, FetchResponse

INVALID_SESSION_ID = 0
INITIAL_EPOCH = 0
_INT_MAX = 2**31 - 1

# A partition's topic id (v13+ requests name topics by id) and fetch parameters.
Wanted = tuple[bytes, FetchRequest.FetchPartition]


@dataclass(slots=True)
class FetchRequestData:
    """What the next request carries: the session and epoch, the partitions to send
    and to forget."""

    session_id: int
    epoch: int
    to_send: dict[TopicPartition, Wanted]
    to_forget: list[tuple[TopicPartition, bytes]] = field(default_factory=list)

    @property
    def is_full(self) -> bool:
        return self.epoch in (INITIAL_EPOCH, -1)


class FetchSessionHandler:
    def __init__(self) -> None:
        self.session_id = INVALID_SESSION_ID
        self.epoch = INITIAL_EPOCH
        # the partitions of the session, with what was last sent for each
        self.session_partitions: dict[TopicPartition, Wanted] = {}

    def build_next(self, wanted: dict[TopicPartition, Wanted]) -> FetchRequestData:
        """The next request for the partitions in ``wanted`` (in order). A partition
        whose topic id changed (it was not known yet) is forgotten under the old id and
        sent under the new one."""
        if self.epoch == INITIAL_EPOCH:
            self.session_partitions = dict(wanted)
            return FetchRequestData(self.session_id, self.epoch, dict(wanted))
        session = self.session_partitions
        to_send: dict[TopicPartition, Wanted] = {}
        to_forget: list[tuple[TopicPartition, bytes]] = []
        for tp, data in wanted.items():
            before = session.get(tp)
            if before != data:
                to_send[tp] = data
                if before is not None and before[0] != data[0]:
                    to_forget.append((tp, before[0]))
        to_forget += [(tp, before[0]) for tp, before in session.items() if tp not in wanted]
        kept = {tp: wanted[tp] for tp in session if tp in wanted}
        kept.update(wanted)  # new partitions at the end
        self.session_partitions = kept
        return FetchRequestData(self.session_id, self.epoch, to_send, to_forget)

    def handle_response(self, resp: FetchResponse) -> bool:
        """Move the session on after an answer; False when the answer is a session
        error (its partitions are then not to be used)."""
        if resp.error_code != ErrorCode.NONE:
            if resp.error_code == ErrorCode.FETCH_SESSION_ID_NOT_FOUND:
                self.session_id = INVALID_SESSION_ID
            self.epoch = INITIAL_EPOCH  # a full request, closing the session it names
            return False
        if self.epoch == INITIAL_EPOCH or resp.session_id == INVALID_SESSION_ID:
            # a full answer opened a session (or none), or the leader closed ours
            self.session_id = resp.session_id
            self.epoch = INITIAL_EPOCH if resp.session_id == INVALID_SESSION_ID else 1
        else:
            self.epoch = 1 if self.epoch == _INT_MAX else self.epoch + 1
        return True

    def handle_error(self) -> None:
        """The request failed (connection lost, timeout): start over with a full one."""
        self.epoch = INITIAL_EPOCH
