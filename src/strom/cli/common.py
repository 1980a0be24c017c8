"""Helpers shared by the CLI tools: properties, errors, client configs."""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from strom.common import properties

if TYPE_CHECKING:  # the client is imported when a tool runs, not for its --help
    from strom.client.aio.admin import AIOAdmin

T = TypeVar("T")


class CliError(Exception):
    """An expected failure: printed as one ``Error: ...`` line, exit code 1."""


def parse_properties(items: Iterable[str] | None, flag: str) -> dict[str, str]:
    """``["k=v", ...]`` -> dict; the value may itself contain ``=``."""
    out: dict[str, str] = {}
    for item in items or ():
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise CliError(f"{flag} expects KEY=VALUE, got {item!r}")
        out[key.strip()] = value
    return out


def load_properties_file(path: str | None) -> dict[str, str]:
    """A Java .properties file (java.util.Properties#load), {} for None."""
    if path is None:
        return {}
    try:
        return properties.load(path)
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror}") from None
    except properties.PropertiesError as exc:
        raise CliError(f"{path}: {exc}") from None


def add_bootstrap(parser: argparse.ArgumentParser, *, required: bool = True) -> None:
    parser.add_argument(
        "--bootstrap-server",
        required=required,
        metavar="HOST:PORT",
        help="REQUIRED: the server(s) to connect to, comma-separated HOST1:PORT1,HOST2:PORT2",
    )


def add_command_config(
    parser: argparse.ArgumentParser, *aliases: str, client: str = "Admin Client"
) -> None:
    """``--command-config FILE`` (and Kafka's older names for it, e.g. ``--producer.config``):
    a .properties file of client configs; they become the configs of strom's client."""
    parser.add_argument(
        "--command-config",
        *aliases,
        dest="command_config",
        metavar="FILE",
        help=f"property file containing configs to be passed to {client} "
        "(any client config of strom's client, e.g. request.timeout.ms)",
    )


def add_command_property(parser: argparse.ArgumentParser, *aliases: str, client: str) -> None:
    """``--command-property KEY=VALUE`` (repeatable; Kafka's older names as aliases)."""
    parser.add_argument(
        "--command-property",
        *aliases,
        dest="command_property",
        action="append",
        metavar="KEY=VALUE",
        help=f"{client} config property; takes precedence over --command-config",
    )


def client_config(
    args: argparse.Namespace,
    defaults: Mapping[str, str | int] | None = None,
    *,
    bootstrap: bool = True,
) -> dict[str, str | int]:
    """The client configs of a tool: ``defaults``, then the --command-config file, then
    --command-property values (when the tool has them), then --bootstrap-server."""
    config: dict[str, str | int] = dict(defaults or {})
    config.update(load_properties_file(getattr(args, "command_config", None)))
    config.update(parse_properties(getattr(args, "command_property", None), "--command-property"))
    if bootstrap and getattr(args, "bootstrap_server", None):
        config["bootstrap.servers"] = args.bootstrap_server
    return config


def java_str(value: object) -> str:
    """A value as Java's string concatenation shows it (None is ``null``)."""
    return "null" if value is None else str(value)


def parse_bool(value: str | None, default: bool = False) -> bool:
    if value is None:
        return default
    return value.strip().lower() == "true"


def run_admin(config: Mapping[str, str | int], work: Callable[[AIOAdmin], Awaitable[T]]) -> T:
    """Run ``work`` with a started AIOAdmin on a fresh event loop; close it after."""
    import asyncio

    from strom.client.aio.admin import AIOAdmin

    async def main() -> T:
        async with AIOAdmin(config) as admin:
            return await work(admin)

    return asyncio.run(main())


def json_field(obj: Any, name: str, kind: type) -> Any:
    """``obj[name]`` of a tool's JSON file, checked to be a ``kind`` (a bool is not an
    int); Kafka's message for a missing field."""
    if not isinstance(obj, dict) or name not in obj:
        raise CliError(f"No such field exists: `{name}`")
    value = obj[name]
    if not isinstance(value, kind) or isinstance(value, bool):
        raise CliError(f"Field `{name}` has the wrong type: {json.dumps(value)}")
    return value


def include_pattern(regex: str) -> re.Pattern[str]:
    """Kafka's TopicFilter.IncludeList: commas mean ``|``, spaces and surrounding
    quotes are dropped; the pattern must match whole topic names."""
    cleaned = regex.strip().replace(",", "|").replace(" ", "")
    cleaned = re.sub(r"^[\"']+", "", re.sub(r"[\"']+$", "", cleaned))
    try:
        return re.compile(cleaned)
    except re.error:
        raise CliError(f"{cleaned} is an invalid regex.") from None
