"""strom: a Kafka-compatible event-streaming platform.

Importing ``strom`` imports nothing else: ``strom.server`` (the broker), ``strom.client``
(the Python client), ``strom.cli`` (the ``strom`` command) and ``strom.testing`` (brokers for
tests, the pytest plugin) load when used.
"""
