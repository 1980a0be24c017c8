"""``strom configs``: kafka-configs.sh --describe / --alter (Kafka's ConfigCommand).

Topics, brokers (and their cluster-wide defaults), broker loggers, groups and
client-metrics resources go through DescribeConfigs / IncrementalAlterConfigs;
users, clients and ips through DescribeClientQuotas / AlterClientQuotas. What
the broker answers is reported as it is: a resource type it refuses fails with
its error, an API it does not offer fails naming that API; nothing is faked.
"""

from __future__ import annotations

import argparse

from strom.cli import configs_options as opts
from strom.cli.common import CliError, client_config, java_str, load_properties_file, run_admin
from strom.cli.configs_quotas import alter_quotas, describe_quotas
from strom.client.admin_types import (
    AlterConfigOp,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    ConfigResourceType,
    ConfigSource,
)
from strom.client.aio.admin import AIOAdmin

add_arguments = opts.add_arguments

_RESOURCE_TYPES = {
    opts.TOPICS: ConfigResourceType.TOPIC,
    opts.BROKERS: ConfigResourceType.BROKER,
    opts.BROKER_LOGGERS: ConfigResourceType.BROKER_LOGGER,
    opts.CLIENT_METRICS: ConfigResourceType.CLIENT_METRICS,
    opts.GROUPS: ConfigResourceType.GROUP,
}
# Kafka's ConfigEntry.ConfigSource names where they differ from the client's enum
_SOURCE_NAMES = {
    ConfigSource.CLIENT_METRICS_CONFIG: "DYNAMIC_CLIENT_METRICS_CONFIG",
    ConfigSource.GROUP_CONFIG: "DYNAMIC_GROUP_CONFIG",
}


def _dynamic_source(entity_type: str, name: str) -> ConfigSource | None:
    """The source --describe (without --all) keeps; None: every entry."""
    if entity_type == opts.TOPICS:
        return ConfigSource.DYNAMIC_TOPIC_CONFIG
    if entity_type == opts.BROKERS:
        return (
            ConfigSource.DYNAMIC_BROKER_CONFIG
            if name
            else ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG
        )
    if entity_type == opts.CLIENT_METRICS:
        return ConfigSource.CLIENT_METRICS_CONFIG
    if entity_type == opts.GROUPS:
        return ConfigSource.GROUP_CONFIG
    return None


async def resource_config(
    admin: AIOAdmin, entity_type: str, name: str, *, synonyms: bool, describe_all: bool
) -> list[ConfigEntry]:
    """ConfigCommand.getResourceConfig: entries sorted by name, dynamic ones only
    unless ``describe_all``."""
    resource = ConfigResource(_RESOURCE_TYPES[entity_type], name)
    entries = (await admin.describe_configs([resource], include_synonyms=synonyms))[resource]
    wanted = None if describe_all else _dynamic_source(entity_type, name)
    return sorted(
        (e for e in entries if wanted is None or e.source == wanted), key=lambda e: e.name
    )


def entry_line(e: ConfigEntry) -> str:
    """``  name=value sensitive=false synonyms={SOURCE:name=value, ...}``."""
    synonyms = ", ".join(
        f"{_SOURCE_NAMES.get(s.source, s.source.name)}:{s.name}={java_str(s.value)}"
        for s in e.synonyms
    )
    sensitive = str(e.is_sensitive).lower()
    return f"  {e.name}={java_str(e.value)} sensitive={sensitive} synonyms={{{synonyms}}}"


async def _known(admin: AIOAdmin, entity_type: str) -> list[str] | None:
    """The existing entities of a type, with "" for the brokers' default; None when the
    type has no listing here (client-metrics)."""
    if entity_type == opts.TOPICS:
        return await admin.list_topics(include_internal=True)
    if entity_type in (opts.BROKERS, opts.BROKER_LOGGERS):
        ids = sorted(b.node_id for b in (await admin.describe_cluster()).brokers)
        return [*map(str, ids), ""]
    if entity_type == opts.GROUPS:
        return [g.group_id for g in await admin.list_groups()]
    return None


async def _entities(admin: AIOAdmin, entity_type: str, name: str | None, every: bool) -> list[str]:
    """The entities to describe; [] after printing Kafka's "doesn't exist" line."""
    known = await _known(admin, entity_type)
    if name is None:
        if known is None:
            raise CliError(f"An entity name must be given to describe {entity_type} with strom")
        return known
    if not every and known is not None and name not in known:
        print(f"The {entity_type[:-1]} '{name}' doesn't exist and doesn't have dynamic config.")
        return []
    return [name]


async def describe(admin: AIOAdmin, args: argparse.Namespace) -> None:
    types, names = opts.entity_types(args), opts.entity_names(args)
    if types[0] in opts.QUOTA_TYPES:
        await describe_quotas(admin, types, names)
        return
    entity_type = types[0]
    for entity in await _entities(admin, entity_type, names[0] if names else None, args.all):
        if entity == "":
            print(f"Default configs for {entity_type} in the cluster are:")
        else:
            kind = "All" if args.all else "Dynamic"
            print(f"{kind} configs for {entity_type[:-1]} {entity} are:")
        entries = await resource_config(
            admin, entity_type, entity, synonyms=True, describe_all=args.all
        )
        for e in entries:
            print(entry_line(e))


def configs_to_add(args: argparse.Namespace) -> dict[str, str]:
    """--add-config-file then --add-config (Kafka's parseConfigsToBeAdded)."""
    added = load_properties_file(args.add_config_file)
    if args.add_config is not None:
        added.update(opts.parse_add_config(args.add_config))
    opts.check_keys(list(added))
    return added


async def alter(
    admin: AIOAdmin, args: argparse.Namespace, added: dict[str, str], deleted: list[str]
) -> None:
    types, names = opts.entity_types(args), opts.entity_names(args)
    entity_type, name = types[0], names[0]
    if entity_type in opts.QUOTA_TYPES:
        await alter_quotas(admin, types, names, added, deleted)
    else:
        await _alter_resource(admin, entity_type, name, added, deleted)
    if name:
        print(f"Completed updating config for {entity_type[:-1]} {name}.")
    else:
        print(f"Completed updating default config for {entity_type} in the cluster.")


async def _alter_resource(
    admin: AIOAdmin, entity_type: str, name: str, added: dict[str, str], deleted: list[str]
) -> None:
    if entity_type == opts.BROKER_LOGGERS:
        current = await resource_config(admin, entity_type, name, synonyms=True, describe_all=False)
        known = {e.name for e in current}
        bad = [k for k in [*deleted, *added] if k not in known]
        if bad:
            note = "" if known else " (the broker lists no loggers)"
            raise CliError(f"Invalid broker logger(s): {','.join(bad)}{note}")
    else:
        current = await resource_config(
            admin, entity_type, name, synonyms=False, describe_all=False
        )
        known = {e.name for e in current}
        bad = [k for k in deleted if k not in known]
        if bad:
            raise CliError(f"Invalid config(s): {','.join(bad)}")
    ops = [AlterConfigOp(k, "", AlterConfigOpType.DELETE) for k in deleted]
    ops += [AlterConfigOp(k, v, AlterConfigOpType.SET) for k, v in added.items()]
    resource = ConfigResource(_RESOURCE_TYPES[entity_type], name)
    await admin.incremental_alter_configs({resource: ops})


def run(args: argparse.Namespace) -> int:
    opts.check(args)
    if args.alter:
        if len(opts.entity_types(args)) != len(opts.entity_names(args)):
            raise CliError("An entity name must be specified for every entity type")
        added = configs_to_add(args)
        deleted = opts.parse_delete_config(args.delete_config)

    async def work(admin: AIOAdmin) -> None:
        await (alter(admin, args, added, deleted) if args.alter else describe(admin, args))

    run_admin(client_config(args), work)
    return 0
