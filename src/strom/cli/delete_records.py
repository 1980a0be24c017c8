"""``strom delete-records``: kafka-delete-records.sh (Kafka's DeleteRecordsCommand).

The offsets come from a JSON file in Kafka's format::

    {"partitions": [{"topic": "foo", "partition": 1, "offset": 1}], "version": 1}

Records before each offset are deleted (offset -1: up to the high watermark);
each partition's new low watermark, or its error, is printed.
"""

from __future__ import annotations

import argparse
import json

from strom.cli.common import (
    CliError,
    add_bootstrap,
    add_command_config,
    client_config,
    json_field,
    run_admin,
)
from strom.client.aio.admin import AIOAdmin
from strom.common.types import TopicPartition
from strom.protocol.errors import KafkaError

JSON_FORMAT = '{"partitions":\n  [{"topic": "foo", "partition": 1, "offset": 1}],\n "version":1\n}'


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_bootstrap(p)
    p.add_argument(
        "--offset-json-file",
        required=True,
        metavar="FILE",
        help="REQUIRED: The JSON file with offset per partition. The format to use is: "
        + JSON_FORMAT,
    )
    add_command_config(p)


def parse_offset_json(text: str) -> dict[TopicPartition, int]:
    """Kafka's parseOffsetJsonStringWithoutDedup, then the duplicate check."""
    try:
        data = json.loads(text)
    except ValueError:
        raise CliError("The input string is not a valid JSON") from None
    if not isinstance(data, dict):
        raise CliError("The input string is not a valid JSON")
    version = data.get("version", 1)
    if version != 1:
        raise CliError(f"Not supported version field value {version}")
    if "partitions" not in data:
        raise CliError("Missing partitions field")
    seen: dict[TopicPartition, int] = {}
    duplicates: list[str] = []
    for entry in data["partitions"]:
        tp = TopicPartition(json_field(entry, "topic", str), json_field(entry, "partition", int))
        if tp in seen and str(tp) not in duplicates:
            duplicates.append(str(tp))
        seen.setdefault(tp, json_field(entry, "offset", int))
    if duplicates:
        raise CliError(
            f"Offset json file contains duplicate topic partitions: {','.join(duplicates)}"
        )
    return seen


async def delete(admin: AIOAdmin, before: dict[TopicPartition, int]) -> list[str]:
    """Delete and return Kafka's result lines (partition by partition after a failure,
    to name each partition's own error; deleting again before the same offset is a
    no-op)."""
    try:
        marks: dict[TopicPartition, int | KafkaError] = dict(await admin.delete_records(before))
    except KafkaError:
        marks = {}
        for tp, offset in before.items():
            try:
                marks[tp] = (await admin.delete_records({tp: offset}))[tp]
            except KafkaError as exc:
                marks[tp] = exc
    return [
        f"partition: {tp}\terror: {mark}"
        if isinstance(mark, KafkaError)
        else f"partition: {tp}\tlow_watermark: {mark}"
        for tp, mark in marks.items()
    ]


def run(args: argparse.Namespace) -> int:
    try:
        with open(args.offset_json_file, encoding="utf-8") as f:
            text = f.read()
    except OSError as exc:
        raise CliError(f"cannot read {args.offset_json_file}: {exc.strerror}") from None
    before = parse_offset_json(text)

    async def work(admin: AIOAdmin) -> list[str]:
        print("Executing records delete operation", flush=True)
        lines = await delete(admin, before)
        print("Records delete operation completed:")
        return lines

    for line in run_admin(client_config(args), work):
        print(line)
    return 0
