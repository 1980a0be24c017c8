"""A deterministic simulation of a ZooKeeper-mode cluster (issue 13): strom's
controller (strom.controller) and replication state machines (strom.replication)
with a ZooKeeper model, in one process over a simulated network and clock, driven by
a seeded schedule of faults, with invariants checked after every step.

Modules, by concern:

- ``zk``, ``zk_types``: the ZooKeeper model (sessions, ephemerals, versions, one-shot
  watches, multi); ``store``: the controller's fenced store over it, and the writes
  of brokers and admin tools;
- ``schedule``: simulated time and the seeded fault list; ``network``: delays, cuts,
  slow links that reorder, duplicates;
- ``node``: a broker (session, control plane, partitions, acks=all produce);
  ``leader``, ``fetcher``, ``alter``: replication between brokers and the ISR
  changes; ``runtime``: the controller's election, watches, jobs and channel;
  ``memlog``: the in-memory log;
- ``client``: the producers; ``faults``: injecting and healing faults;
- ``invariants``, ``final``: what is checked; ``runner``: a run, shrinking a failure
  to a short fault list, the command line (``python -m strom.testing.sim.runner``).

Deliberate differences from strom.broker's asyncio glue are named in the modules
that model it (``runtime``); they are reported as bugs there.
"""
