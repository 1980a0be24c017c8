"""A broker object in the current process, without sockets: for tests of the broker's
logic on real logs (a crash is dropping the object without its shutdown)."""

from __future__ import annotations

from pathlib import Path

from strom.broker.api import Broker
from strom.common.config import BrokerConfig
from strom.common.types import Clock
from strom.metadata.embedded import EmbeddedMetadataStore


def open_broker(config: BrokerConfig, clock: Clock | None = None) -> Broker:
    """A single-node Broker over ``config``'s log directories, registered with its
    embedded store (call it inside the event loop the test runs)."""
    store = EmbeddedMetadataStore(
        [Path(d) for d in config.log_dirs], config.node_id, config.get_str("cluster.id")
    )
    broker = Broker(config, store, clock)
    broker.start()
    return broker
