"""Online migration between the classic and the consumer protocol (KIP-848): a consumer
protocol member upgrades a classic group, classic members keep working in the consumer
group (JoinGroup, SyncGroup, Heartbeat, LeaveGroup), and the group goes back to a
classic group when the last consumer-protocol member leaves."""

from __future__ import annotations

from typing import Any

from strom.client.assignors import Subscription
from strom.client.membership import decode_assignment, encode_assignment, encode_subscription
from strom.common.types import TopicPartition
from strom.coordinator.group.state import GroupState
from strom.protocol.errors import ErrorCode as E
from strom.protocol.generated.leave_group import LeaveGroupRequest
from strom.protocol.generated.sync_group import SyncGroupRequest
from tests.unit.coordinator.consumer_harness import ConsumerHarness, SimMember, settle


def protocols(owned: list[int] | None = None) -> list[tuple[str, bytes]]:
    sub = Subscription(("t",), tuple(TopicPartition("t", p) for p in owned or ()))
    return [("range", encode_subscription(sub))]


def classic_group(h: ConsumerHarness) -> tuple[str, str]:
    """Two classic members sharing t's 4 partitions (range: a 0,1 and b 2,3)."""
    a = h.join_new(protocols=protocols())
    b = h.join_new(protocols=protocols())
    h.join(a, protocols=protocols())
    gen, leader = h.group().generation_id, h.group().leader_id
    other = b if leader == a else a
    plan = {a: [0, 1], b: [2, 3]}
    h.sync(other, gen)
    h.sync(leader, gen, {m: encode_assignment([TopicPartition("t", p) for p in ps])
                         for m, ps in plan.items()})  # fmt: skip
    assert h.state() is GroupState.STABLE
    return a, b


def sync(h: ConsumerHarness, member: str, generation: int) -> Any:
    req = SyncGroupRequest(
        group_id="g",
        generation_id=generation,
        member_id=member,
        protocol_type="consumer",
        protocol_name="range",
    )
    return h.responses[h.call(lambda hd: h.shard.sync_group(hd, req, h.now))]


def classic_owned(resp: Any) -> set[tuple[str, int]]:
    return {(tp.topic, tp.partition) for tp in decode_assignment(resp.assignment)}


def rejoin(h: ConsumerHarness, member: str, owned: list[int]) -> tuple[int, set[tuple[str, int]]]:
    """A classic member's rejoin and sync: (generation, partitions)."""
    joined = h.responses[h.join(member, protocols=protocols(owned))]
    assert joined.error_code == E.NONE and joined.leader == "", joined
    got = sync(h, member, joined.generation_id)
    assert got.error_code == E.NONE, got
    return joined.generation_id, classic_owned(got)


def test_a_consumer_protocol_member_upgrades_a_classic_group() -> None:
    h = ConsumerHarness({"t": 4})
    a, b = classic_group(h)
    generation = h.group().generation_id
    c = SimMember(h, "c", topics=["t"])
    resp = c.join()
    assert resp.error_code == E.NONE
    assert "g" not in h.shard.groups
    g = h.cgroup()
    assert g.members[a].uses_classic_protocol and g.members[a].member_epoch == generation
    assert g.group_epoch == generation + 1 and not c.owned  # a and b still hold everything
    assert h.heartbeat(a, generation) == E.REBALANCE_IN_PROGRESS
    # an eager member revokes everything before it rejoins
    gen_a, owned_a = rejoin(h, a, [])
    gen_b, owned_b = rejoin(h, b, [])
    assert gen_a == gen_b == g.group_epoch
    settle([c])
    everything = owned_a | owned_b | c.owned
    assert len(everything) == len(owned_a) + len(owned_b) + len(c.owned) == 4
    assert h.heartbeat(a, gen_a) == E.NONE
    assert h.shard.describe_group("g").group_state == "Dead"  # a consumer group now
    loaded = h.replayed().consumer_groups["g"]
    assert loaded.members.keys() == g.members.keys() and "g" not in h.replayed().groups


def test_classic_members_errors_in_a_consumer_group() -> None:
    h = ConsumerHarness({"t": 4})
    a, _ = classic_group(h)
    SimMember(h, "c", topics=["t"]).join()
    assert h.heartbeat(a, 99) == E.ILLEGAL_GENERATION
    assert h.heartbeat("nobody", 1) == E.UNKNOWN_MEMBER_ID
    assert h.heartbeat("c", 1) == E.UNKNOWN_MEMBER_ID  # c uses the consumer protocol
    assert sync(h, a, 99).error_code == E.ILLEGAL_GENERATION
    generation = h.cgroup().members[a].member_epoch
    assert sync(h, a, generation).error_code == E.REBALANCE_IN_PROGRESS  # must rejoin first
    bad = h.responses[h.join(a, protocols=[("roundrobin", protocols()[0][1])])]
    assert bad.error_code == E.INCONSISTENT_GROUP_PROTOCOL


def test_a_classic_member_that_does_not_rejoin_is_fenced() -> None:
    h = ConsumerHarness({"t": 4})
    a, b = classic_group(h)
    c = SimMember(h, "c", topics=["t"])
    c.join()
    generation = h.cgroup().members[a].member_epoch
    assert h.heartbeat(a, generation) == E.REBALANCE_IN_PROGRESS
    rejoin(h, b, [])
    h.advance(10_000)  # a's session (10 s in the harness) runs out
    c.heartbeat()
    assert a not in h.cgroup().members


def test_the_last_consumer_member_leaving_downgrades_the_group() -> None:
    h = ConsumerHarness({"t": 4})
    a, b = classic_group(h)
    c = SimMember(h, "c", topics=["t"])
    c.join()
    rejoin(h, a, [])
    rejoin(h, b, [])
    settle([c])
    c.leave()
    assert "g" not in h.shard.consumer_groups
    group = h.group()
    assert group.state is GroupState.PREPARING_REBALANCE and set(group.members) == {a, b}
    assert h.replayed().groups["g"].generation_id == group.generation_id
    # the classic members rejoin the classic group as usual
    h.join(a, protocols=protocols())
    h.join(b, protocols=protocols())
    assert h.group().state is GroupState.COMPLETING_REBALANCE


def test_classic_leave_removes_members_of_a_consumer_group() -> None:
    h = ConsumerHarness({"t": 4})
    a, _ = classic_group(h)
    c = SimMember(h, "c", topics=["t"])
    c.join()
    epoch = h.cgroup().group_epoch
    req = LeaveGroupRequest(group_id="g", members=[LeaveGroupRequest.MemberIdentity(a, None)])
    resp = h.responses[h.call(lambda hd: h.shard.leave_group(hd, req, h.now))]
    assert [m.error_code for m in resp.members] == [E.NONE]
    assert a not in h.cgroup().members and h.cgroup().group_epoch == epoch + 1


def test_upgrade_refused_when_the_policy_says_so() -> None:
    h = ConsumerHarness({"t": 4}, consumer_migration_policy="downgrade")
    classic_group(h)
    assert SimMember(h, "c", topics=["t"]).join().error_code == E.GROUP_ID_NOT_FOUND
    assert "g" in h.shard.groups
