from strom.client.metadata import ClusterMetadata
from strom.common.types import TopicPartition
from strom.protocol.generated.metadata import MetadataResponse as M


def _response(*topics: M.MetadataResponseTopic) -> M:
    return M(
        brokers=[M.MetadataResponseBroker(1, "h1", 9092), M.MetadataResponseBroker(2, "h2", 9093)],
        cluster_id="c1",
        controller_id=2,
        topics=list(topics),
    )


def _topic(name: str, leaders: list[int], error_code: int = 0) -> M.MetadataResponseTopic:
    return M.MetadataResponseTopic(
        error_code=error_code,
        name=name,
        partitions=[
            M.MetadataResponsePartition(0, i, leader, 0, [1, 2], [leader])
            for i, leader in enumerate(leaders)
        ],
    )


def test_update_and_lookups() -> None:
    md = ClusterMetadata()
    assert md.is_stale(0, 1000)
    md.update(_response(_topic("a", [1, 2]), _topic("b", [2])), now_ms=100, full=True)
    assert md.cluster_id == "c1" and md.controller_id == 2
    assert md.partition_count("a") == 2
    assert md.partitions_for("a") == [TopicPartition("a", 0), TopicPartition("a", 1)]
    assert md.leader_for(TopicPartition("a", 1)) == 2
    assert md.leader_for(TopicPartition("a", 7)) is None
    assert md.leader_for(TopicPartition("zz", 0)) is None
    assert md.broker(2) is not None and md.broker(2).port == 9093  # type: ignore[union-attr]
    assert not md.is_stale(500, 1000) and md.is_stale(1100, 1000)


def test_partial_update_keeps_other_topics_full_update_drops_them() -> None:
    md = ClusterMetadata()
    md.update(_response(_topic("a", [1]), _topic("b", [1])), now_ms=1, full=True)
    md.update(_response(_topic("a", [2])), now_ms=2)
    assert md.partition_count("b") == 1
    assert md.leader_for(TopicPartition("a", 0)) == 2
    md.update(_response(_topic("a", [2])), now_ms=3, full=True)
    assert md.partition_count("b") is None


def test_leaderless_partition_and_unknown_topic_error() -> None:
    md = ClusterMetadata()
    md.update(_response(_topic("a", [-1]), _topic("gone", [], error_code=3)), now_ms=1)
    assert md.leader_for(TopicPartition("a", 0)) is None
    assert md.partition_count("gone") is None
