"""Consumer groups of the next-generation rebalance protocol (KIP-848): the members
heartbeat (ConsumerGroupHeartbeat) and the coordinator assigns their partitions."""
