"""The cluster controller as pure state machines (Kafka ZooKeeper-mode controller)."""
