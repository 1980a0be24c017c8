"""Who appends a batch to a log, which decides the checks it gets (Kafka's AppendOrigin).

Apart from strom.protocol.records so that what names it (the replica manager's append
calls, at every broker's start) does not import the record codec (issue 15).
"""

from __future__ import annotations

from enum import IntEnum


class AppendOrigin(IntEnum):
    """Who is appending: Kafka applies different batch checks to each."""

    REPLICATION = 0
    COORDINATOR = 1
    CLIENT = 2
