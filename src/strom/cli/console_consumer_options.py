"""The options of ``strom console-consumer`` (kafka-console-consumer.sh's, with
Kafka's help texts)."""

from __future__ import annotations

import argparse

from strom.cli.common import add_bootstrap, add_command_config, add_command_property
from strom.cli.formatters import DESERIALIZER_NAMES, FORMATTER_NAMES, FORMATTER_PROPERTIES


def add_topic_or_include(p: argparse.ArgumentParser) -> None:
    """``--topic`` or ``--include`` (one of them is required)."""
    topics = p.add_mutually_exclusive_group(required=True)
    topics.add_argument("--topic", help="The topic to consume from.")
    topics.add_argument(
        "--include",
        metavar="JAVA_REGEX",
        help="Regular expression specifying list of topics to include for consumption "
        "(matched against whole topic names; commas stand for |).",
    )


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_bootstrap(p)
    add_topic_or_include(p)
    p.add_argument(
        "--from-beginning",
        action="store_true",
        help="If the consumer does not already have an established offset to consume from, "
        "start with the earliest message present in the log rather than the latest message.",
    )
    p.add_argument(
        "--max-messages",
        type=int,
        metavar="N",
        help="The maximum number of messages to consume before exiting. If not set, "
        "consumption is continual.",
    )
    p.add_argument(
        "--partition",
        type=int,
        help="The partition to consume from. Consumption starts from the end of the "
        "partition unless '--offset' is specified.",
    )
    p.add_argument(
        "--offset",
        default=None,
        help="The offset to consume from (a non-negative number), or 'earliest' which means "
        "from beginning, or 'latest' which means from end (needs --partition)",
    )
    p.add_argument(
        "--timeout-ms",
        type=int,
        metavar="MS",
        help="If specified, exit if no message is available for consumption for the "
        "specified interval.",
    )
    p.add_argument(
        "--formatter",
        default="org.apache.kafka.tools.consumer.DefaultMessageFormatter",
        metavar="CLASS",
        help="The name of a class to use for formatting kafka messages for display: "
        + ", ".join(FORMATTER_NAMES)
        + " (Kafka's class names; default DefaultMessageFormatter).",
    )
    p.add_argument(
        "--formatter-property",
        "--property",
        dest="formatter_property",
        action="append",
        metavar="KEY=VALUE",
        help="The properties to initialize the message formatter. Default properties "
        "include: " + "; ".join(FORMATTER_PROPERTIES) + ".",
    )
    p.add_argument(
        "--formatter-config",
        metavar="FILE",
        help="Config properties file to initialize the message formatter. Note that "
        "--formatter-property takes precedence over this config.",
    )
    p.add_argument(
        "--key-deserializer",
        metavar="CLASS",
        help="The name of the class to use for deserializing keys: "
        + ", ".join(DESERIALIZER_NAMES)
        + " (org.apache.kafka.common.serialization).",
    )
    p.add_argument(
        "--value-deserializer",
        metavar="CLASS",
        help="The name of the class to use for deserializing values (as --key-deserializer).",
    )
    p.add_argument(
        "--skip-message-on-error",
        action="store_true",
        help="If there is an error when processing a message, skip it instead of halt.",
    )
    add_command_property(p, "--consumer-property", client="Consumer")
    add_command_config(p, "--consumer.config", client="the consumer")
    p.add_argument(
        "--isolation-level",
        choices=("read_uncommitted", "read_committed"),
        help="Set to read_committed in order to filter out transactional messages which are "
        "not committed. Set to read_uncommitted to read all messages.",
    )
    p.add_argument("--group", help="The consumer group id of the consumer.")
