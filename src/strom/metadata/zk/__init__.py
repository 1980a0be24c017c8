"""The ZooKeeper store of a strom cluster (the only kazoo importer)."""
