"""Replica assignment for new topics and partitions, as Kafka's AdminUtils does it.

Round robin over the brokers sorted by id, from a start index, with the second
replica shifted per round of partitions so that followers spread too; with
``broker.rack`` on every broker, the list alternates racks and each partition's
replicas go to as many racks as there are. The random start and shift are
inputs (``start_index``, ``shift``): the caller draws them, tests fix them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence


class AssignmentError(ValueError):
    """No assignment exists: too few brokers, or racks on only some of them."""


def _replica_index(first: int, shift: int, index: int, n: int) -> int:
    return (first + 1 + (shift + index) % (n - 1)) % n


def _rack_unaware(
    num_partitions: int,
    replication_factor: int,
    brokers: Sequence[int],
    start_index: int,
    shift: int,
    first_partition: int,
) -> list[tuple[int, ...]]:
    n = len(brokers)
    out: list[tuple[int, ...]] = []
    for partition in range(first_partition, first_partition + num_partitions):
        if partition > 0 and partition % n == 0:
            shift += 1
        first = (partition + start_index) % n
        replicas = [brokers[first]]
        replicas += [
            brokers[_replica_index(first, shift, j, n)] for j in range(replication_factor - 1)
        ]
        out.append(tuple(replicas))
    return out


def rack_alternated(racks: Mapping[int, str]) -> list[int]:
    """Brokers ordered rack by rack in turn (racks sorted, brokers by id in each)."""
    by_rack: dict[str, list[int]] = {}
    for broker_id in sorted(racks):
        by_rack.setdefault(racks[broker_id], []).append(broker_id)
    iters = {rack: iter(ids) for rack, ids in sorted(by_rack.items())}
    names = sorted(iters)
    out: list[int] = []
    i = 0
    while len(out) < len(racks):
        nxt = next(iters[names[i]], None)
        if nxt is not None:
            out.append(nxt)
        i = (i + 1) % len(names)
    return out


def _rack_aware(
    num_partitions: int,
    replication_factor: int,
    racks: Mapping[int, str],
    start_index: int,
    shift: int,
    first_partition: int,
) -> list[tuple[int, ...]]:
    arranged = rack_alternated(racks)
    n, num_racks = len(arranged), len(set(racks.values()))
    out: list[tuple[int, ...]] = []
    for partition in range(first_partition, first_partition + num_partitions):
        if partition > 0 and partition % n == 0:
            shift += 1
        first = (partition + start_index) % n
        leader = arranged[first]
        replicas, used_racks, used = [leader], {racks[leader]}, {leader}
        k = 0
        for _ in range(replication_factor - 1):
            while True:
                broker = arranged[_replica_index(first, shift * num_racks, k, n)]
                rack = racks[broker]
                k += 1
                if (rack not in used_racks or len(used_racks) == num_racks) and (
                    broker not in used or len(used) == n
                ):
                    replicas.append(broker)
                    used_racks.add(rack)
                    used.add(broker)
                    break
        out.append(tuple(replicas))
    return out


def assign_replicas(
    num_partitions: int,
    replication_factor: int,
    brokers: Mapping[int, str | None],
    *,
    start_index: int,
    shift: int,
    first_partition: int = 0,
) -> list[tuple[int, ...]]:
    """Replicas of ``num_partitions`` partitions numbered from ``first_partition``.
    ``brokers`` maps each live broker id to its rack (None: no rack). AssignmentError
    when ``replication_factor`` exceeds the brokers or only some brokers have a rack."""
    if replication_factor <= 0 or num_partitions < 0:
        raise AssignmentError("replication factor must be larger than 0")
    if replication_factor > len(brokers):
        raise AssignmentError(
            f"Replication factor: {replication_factor} larger than available brokers: "
            f"{len(brokers)}."
        )
    n = len(brokers)
    start_index, shift = start_index % n, shift % n
    racks = {b: r for b, r in brokers.items() if r is not None}
    if not racks:
        return _rack_unaware(
            num_partitions, replication_factor, sorted(brokers), start_index, shift,
            first_partition,
        )  # fmt: skip
    if len(racks) != n:
        raise AssignmentError(
            "Not all brokers have rack information for replica rack aware assignment."
        )
    return _rack_aware(
        num_partitions, replication_factor, racks, start_index, shift, first_partition
    )
