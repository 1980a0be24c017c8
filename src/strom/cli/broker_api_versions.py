"""``strom broker-api-versions``: kafka-broker-api-versions.sh.

One block per broker, as Kafka's NodeApiVersions.toString(true) lays it out::

    127.0.0.1:9092 (id: 1 rack: null isFenced: false) -> (
    \tProduce(0): 0 to 11 [usable: 11],
    \t...
    \tCreateDelegationToken(38): UNSUPPORTED,
    ...
    )

"usable" is the newest version both the broker and strom's client know; an
API of Kafka's (ZooKeeper-mode) broker list that the broker does not offer is
UNSUPPORTED.
"""

from __future__ import annotations

import argparse

from strom.cli.common import add_bootstrap, add_command_config, client_config, run_admin
from strom.client.aio.admin import AIOAdmin
from strom.client.metadata import BrokerMetadata
from strom.protocol.generated import REQUESTS, request_class

# Kafka 3.9's ApiKeys.zkBrokerApis(): the APIs whose schemas list the zkBroker listener.
KAFKA_BROKER_APIS = frozenset({*range(0, 52), 56, 57, 58, 60, 61, 65, 66, 67, 68, 69})


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_bootstrap(p)
    add_command_config(p)


def api_name(api_key: int) -> str:
    """Kafka's ApiKeys name: the message name without "Request" (``Produce``)."""
    return REQUESTS[api_key][1].removesuffix("Request") if api_key in REQUESTS else "UNKNOWN"


def _line(api_key: int, versions: tuple[int, int]) -> str:
    low, high = versions
    text = f"{api_name(api_key)}({api_key}): " if api_key in REQUESTS else f"UNKNOWN({api_key}): "
    text += str(low) if low == high else f"{low} to {high}"
    if api_key not in REQUESTS:
        return text
    known = request_class(api_key)
    if low > known.MAX_VERSION:
        return text + " [unusable: node too new]"
    if high < known.MIN_VERSION:
        return text + " [unusable: node too old]"
    return text + f" [usable: {min(known.MAX_VERSION, high)}]"


def describe(broker: BrokerMetadata, versions: dict[int, tuple[int, int]]) -> str:
    """One broker's block (Node.toString() + " -> " + NodeApiVersions.toString(true))."""
    lines = {key: _line(key, v) for key, v in versions.items()}
    for key in KAFKA_BROKER_APIS - versions.keys():
        lines[key] = f"{api_name(key)}({key}): UNSUPPORTED"
    body = ",\n\t".join(lines[k] for k in sorted(lines))
    rack = "null" if broker.rack is None else broker.rack
    node = f"{broker.host}:{broker.port} (id: {broker.node_id} rack: {rack} isFenced: false)"
    return f"{node} -> (\n\t{body}\n)"


def run(args: argparse.Namespace) -> int:
    async def work(admin: AIOAdmin) -> dict[BrokerMetadata, dict[int, tuple[int, int]]]:
        return await admin.broker_api_versions()

    for broker, versions in run_admin(client_config(args), work).items():
        print(describe(broker, versions))
    return 0
