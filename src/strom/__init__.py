"""strom: a Kafka-compatible event-streaming platform.

Importing ``strom`` imports nothing else: ``strom.server`` (the broker), ``strom.client``
(the Python client), ``strom.cli`` (the ``strom`` command) and ``strom.testing`` (brokers for
tests, the pytest plugin) load when used.
"""


def compiled() -> list[str]:
    """The modules this process runs from the optional mypyc build (``STROM_MYPYC=1``,
    see setup.py); an empty list when strom is pure Python, as a plain install is."""
    from strom.mypyc_build import compiled_modules

    return compiled_modules()
