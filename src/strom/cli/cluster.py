"""``strom cluster``: kafka-cluster.sh (Kafka's ClusterTool) and strom's ``describe``.

``cluster-id`` prints "Cluster ID: <id>"; ``unregister --id N`` answers as Kafka's
tool does against a ZooKeeper cluster (no broker supports UnregisterBroker);
``describe`` (strom's) prints the cluster id, the controller and a table of the
brokers (id, host:port, rack, whether it is the controller), from DescribeCluster.
"""

from __future__ import annotations

import argparse

from strom.cli.common import CliError, client_config
from strom.cli.transactions import table
from strom.client.sync import Admin
from strom.protocol.errors import ErrorCode, KafkaError

_COMMANDS = {
    "cluster-id": "Get information about the ID of a cluster.",
    "describe": "List the brokers (id, host:port, rack) and the controller (strom's).",
    "unregister": "Unregister a broker (KRaft clusters only).",
}
HEADERS = ("BROKER", "HOST:PORT", "RACK", "CONTROLLER")


def _connection_arguments(p: argparse.ArgumentParser, default: object) -> None:
    p.add_argument(
        "--bootstrap-server",
        "-b",
        metavar="HOST:PORT",
        default=default,
        help="A list of host/port pairs to use for establishing the connection to the cluster.",
    )
    p.add_argument(
        "--command-config",
        "--config",
        "-c",
        dest="command_config",
        metavar="FILE",
        default=default,
        help="A property file containing configs to be passed to the Admin Client.",
    )


def add_arguments(p: argparse.ArgumentParser) -> None:
    # before the command (as strom's other tools) or after it (as kafka-cluster.sh)
    _connection_arguments(p, None)
    sub = p.add_subparsers(dest="cluster_command", metavar="COMMAND", required=True)
    for name, help_text in _COMMANDS.items():
        cmd = sub.add_parser(name, help=help_text, description=help_text)
        _connection_arguments(cmd, argparse.SUPPRESS)
        if name == "unregister":
            cmd.add_argument(
                "--id", "-i", type=int, required=True, help="The ID of the broker to unregister."
            )


def run(args: argparse.Namespace) -> int:
    config = client_config(args)
    if not config.get("bootstrap.servers"):
        raise CliError("Please specify --bootstrap-server.")
    with Admin(config) as admin:
        if args.cluster_command == "cluster-id":
            cluster_id = admin.describe_cluster().cluster_id
            if cluster_id is None:
                print("No cluster ID found. The Kafka version is probably too old.")
            else:
                print(f"Cluster ID: {cluster_id}")
        elif args.cluster_command == "describe":
            print(describe(admin))
        else:
            unregister(admin, args.id)
    return 0


def describe(admin: Admin) -> str:
    """Cluster id, controller and one row a broker, in id order."""
    d = admin.describe_cluster()
    rows = [
        (
            str(b.node_id),
            f"{b.host}:{b.port}",
            b.rack or "-",
            "yes" if b.node_id == d.controller_id else "no",
        )
        for b in sorted(d.brokers, key=lambda b: b.node_id)
    ]
    controller = "none" if d.controller_id < 0 else str(d.controller_id)
    return "\n".join(
        [f"Cluster ID: {d.cluster_id}", f"Controller: {controller}", table(HEADERS, rows)]
    )


def unregister(admin: Admin, broker_id: int) -> None:
    try:
        admin.unregister_broker(broker_id)
    except KafkaError as exc:
        if exc.code != ErrorCode.UNSUPPORTED_VERSION:
            raise
        print("The target cluster does not support the broker unregistration API.")
        return
    print(f"Broker {broker_id} is no longer registered.")
