"""``strom console``: a web console for a Kafka-compatible cluster (aiohttp).

Cluster (brokers, controller, API versions), topics (partitions, leaders, replicas, ISR,
sizes, configs; create, delete, add partitions, change configs), a message browser (by
partition and offset or time, key/value/headers, JSON pretty-printed, search in a range),
a test producer, consumer groups (members, assignments, committed offsets, lag per
partition and a plot of lag over time), ACLs (list, filter, add, delete), and the sizing
calculator. It talks to the cluster with strom's own client only, so it works with any
Kafka-compatible broker.
"""
