"""The options of ``strom configs`` and their checks (Kafka's ConfigCommandOptions).

Entities are named as in kafka-configs.sh: ``--entity-type`` with
``--entity-name`` / ``--entity-default`` (names kept in command-line order), or
one of the shortcuts ``--topic``, ``--broker``, ``--broker-defaults``, ...
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Sequence
from typing import Any

from strom.cli.common import CliError, add_bootstrap, add_command_config

TOPICS, CLIENTS, USERS, BROKERS, IPS = "topics", "clients", "users", "brokers", "ips"
CLIENT_METRICS, GROUPS, BROKER_LOGGERS = "client-metrics", "groups", "broker-loggers"
# BROKER_SUPPORTED_CONFIG_TYPES: broker-loggers, then ConfigType's values in order
ENTITY_TYPES = (BROKER_LOGGERS, TOPICS, CLIENTS, USERS, BROKERS, IPS, CLIENT_METRICS, GROUPS)
QUOTA_TYPES = (USERS, CLIENTS, IPS)
# shortcut flag -> entity type (flags with a value, then the *-defaults flags)
ENTITY_FLAGS = {
    "topic": (TOPICS, "The topic's name."),
    "client": (CLIENTS, "The client's ID."),
    "user": (USERS, "The user's principal name."),
    "broker": (BROKERS, "The broker's ID."),
    "broker_logger": (BROKER_LOGGERS, "The broker's ID for its logger config."),
    "ip": (IPS, "The IP address."),
    "client_metrics": (CLIENT_METRICS, "The client metrics config resource name."),
    "group": (GROUPS, "The group's ID."),
}
DEFAULT_FLAGS = {
    "client_defaults": (CLIENTS, "The config defaults for all clients."),
    "user_defaults": (USERS, "The config defaults for all users."),
    "broker_defaults": (BROKERS, "The config defaults for all brokers."),
    "ip_defaults": (IPS, "The config defaults for all IPs."),
}
_SPLIT_AHEAD = r"(?=[^\]]*(?:\[|$))"  # outside square brackets


class _EntityName(argparse.Action):
    """--entity-name NAME and --entity-default, kept in command-line order ("" for
    the default entity)."""

    def __call__(
        self, parser: argparse.ArgumentParser, ns: argparse.Namespace, value: Any, opt: Any = None
    ) -> None:
        names = list(getattr(ns, "entity_names", None) or [])
        names.append("" if self.const == "" else str(value))
        ns.entity_names = names
        if self.const == "":
            ns.entity_default = True


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_bootstrap(p)
    add_command_config(p)
    p.add_argument("--alter", action="store_true", help="Alter the configuration for the entity.")
    p.add_argument("--describe", action="store_true", help="List configs for the given entity.")
    p.add_argument(
        "--all",
        action="store_true",
        help="List all configs for the given entity, including static configs if available.",
    )
    p.add_argument(
        "--entity-type",
        action="append",
        dest="entity_types",
        metavar="TYPE",
        help="Type of entity (topics/clients/users/brokers/broker-loggers/ips/client-metrics/"
        "groups)",
    )
    p.add_argument(
        "--entity-name",
        action=_EntityName,
        metavar="NAME",
        help="Name of entity (topic name/client id/user principal name/broker id/ip/client "
        "metrics/group id)",
    )
    p.add_argument(
        "--entity-default",
        action=_EntityName,
        nargs=0,
        const="",
        help="Default entity name for clients/users/brokers/ips (applies to corresponding "
        "entity type)",
    )
    p.set_defaults(entity_names=[], entity_default=False)
    p.add_argument(
        "--add-config",
        metavar="k1=v1,k2=[v1,v2,v2],k3=v3",
        help="Key Value pairs of configs to add. Square brackets can be used to group values "
        "which contain commas: 'k1=v1,k2=[v1,v2,v2],k3=v3'.",
    )
    p.add_argument(
        "--add-config-file",
        metavar="FILE",
        help="Path to a properties file with configs to add. See add-config for a list of "
        "valid configurations.",
    )
    p.add_argument(
        "--delete-config",
        action="append",
        metavar="k1,k2",
        help="config keys to remove 'k1,k2'",
    )
    for dest, (_, help_text) in ENTITY_FLAGS.items():
        p.add_argument(f"--{dest.replace('_', '-')}", dest=dest, help=help_text)
    for dest, (_, help_text) in DEFAULT_FLAGS.items():
        p.add_argument(
            f"--{dest.replace('_', '-')}", dest=dest, action="store_true", help=help_text
        )


def entity_types(args: argparse.Namespace) -> list[str]:
    """--entity-type values, then the types of the shortcut flags given."""
    types = list(args.entity_types or [])
    types += [t for dest, (t, _) in ENTITY_FLAGS.items() if getattr(args, dest) is not None]
    types += [t for dest, (t, _) in DEFAULT_FLAGS.items() if getattr(args, dest)]
    return types


def entity_names(args: argparse.Namespace) -> list[str]:
    """--entity-name/--entity-default in order, then the shortcut flags' names."""
    names = list(args.entity_names)
    names += [getattr(args, d) for d in ENTITY_FLAGS if getattr(args, d) is not None]
    names += ["" for d in DEFAULT_FLAGS if getattr(args, d)]
    return names


def _uses_shortcuts(args: argparse.Namespace) -> bool:
    return any(getattr(args, d) is not None for d in ENTITY_FLAGS) or any(
        getattr(args, d) for d in DEFAULT_FLAGS
    )


def check(args: argparse.Namespace) -> None:
    """ConfigCommandOptions.checkArgs, with Kafka's messages."""
    if args.alter == args.describe:
        raise CliError("Command must include exactly one action: --describe, --alter")
    if args.describe and (args.add_config is not None or args.delete_config):
        other = "add-config" if args.add_config is not None else "delete-config"
        raise CliError(f'Option "[describe]" can\'t be used with option "[{other}]"')
    types = entity_types(args)
    duplicates = sorted({t for t in types if types.count(t) > 1})
    if duplicates:
        raise CliError(f"Duplicate entity type(s) specified: {','.join(duplicates)}")
    for t in types:
        if t not in ENTITY_TYPES:
            raise CliError(
                f"Invalid entity type {t}, the entity type must be one of "
                f"{', '.join(ENTITY_TYPES)} with a --bootstrap-server or --bootstrap-controller "
                "argument"
            )
    if not types:
        raise CliError("At least one entity type must be specified")
    if len(types) > 1 and set(types) != {USERS, CLIENTS}:
        raise CliError(f"Only '{USERS}' and '{CLIENTS}' entity types may be specified together")
    if (args.entity_types or args.entity_names) and _uses_shortcuts(args):
        raise CliError(
            "--entity-{type,name,default} should not be used in conjunction with specific "
            "entity flags"
        )
    _check_names(args, types, entity_names(args))


def _check_names(args: argparse.Namespace, types: list[str], names: list[str]) -> None:
    has_name = any(names)
    has_default = "" in names
    if has_name and (BROKERS in types or BROKER_LOGGERS in types):
        for name in names:
            if name and not re.fullmatch(r"-?\d+", name):
                raise CliError(
                    f"The entity name for {types[0]} must be a valid integer broker id, but it "
                    f"is: {name}"
                )
    if args.describe:
        _check_describe(args, types, has_name)
    else:
        _check_alter(args, types, has_name, has_default)


def _check_describe(args: argparse.Namespace, types: list[str], has_name: bool) -> None:
    if args.entity_default and not set(types) & {USERS, CLIENTS, BROKERS, IPS}:
        raise CliError(
            f"--entity-default must not be specified with --describe of {','.join(types)}"
        )
    if BROKER_LOGGERS in types and not has_name:
        raise CliError(f"An entity name must be specified with --describe of {','.join(types)}")


def _check_alter(
    args: argparse.Namespace, types: list[str], has_name: bool, has_default: bool
) -> None:
    if set(types) & {USERS, CLIENTS, BROKERS, IPS}:
        if not has_name and not has_default:
            raise CliError(
                "An entity-name or default entity must be specified with --alter of users, "
                "clients, brokers or ips"
            )
    elif not has_name:
        raise CliError(f"An entity name must be specified with --alter of {','.join(types)}")
    if args.add_config is not None and args.add_config_file is not None:
        raise CliError("Only one of --add-config or --add-config-file must be specified")
    if args.add_config is None and args.add_config_file is None and not args.delete_config:
        raise CliError(
            "At least one of --add-config, --add-config-file, or --delete-config must be "
            "specified with --alter"
        )


def parse_add_config(text: str) -> dict[str, str]:
    """'k1=v1,k2=[v1,v2],k3=v3' -> {k1: v1, k2: "v1,v2", k3: v3} (Kafka's split rules)."""
    out: dict[str, str] = {}
    for item in re.split("," + _SPLIT_AHEAD, text):
        pair = re.split(r"\s*=\s*" + _SPLIT_AHEAD, item)
        if len(pair) != 2:
            raise CliError(
                'Invalid entity config: all configs to be added must be in the format "key=val" '
                'or  "key=[val1,val2]" to group values which contain commas.'
            )
        out[pair[0].strip()] = re.sub(r"[\[\]]", "", pair[1]).strip()
    return out


def check_keys(keys: Sequence[str]) -> None:
    """Kafka's validatePropsKey."""
    for key in keys:
        if not re.fullmatch(r"[$a-zA-Z0-9._-]*", key):
            raise CliError(f"Invalid character found for config key: {key}")


def parse_delete_config(values: Sequence[str] | None) -> list[str]:
    """--delete-config k1,k2 (repeatable) -> [k1, k2]."""
    return [k.strip() for v in values or () for k in v.split(",")]
