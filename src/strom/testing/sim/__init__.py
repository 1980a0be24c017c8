"""A deterministic simulation of a ZooKeeper-mode cluster: the controller, the
replication state machines and a ZooKeeper model in one process over a simulated
network and clock (issue 13). See :mod:`strom.testing.sim.runner`."""
