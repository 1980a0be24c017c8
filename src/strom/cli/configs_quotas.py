"""Quota configs of users, clients and ips for ``strom configs`` (Kafka's
ConfigCommand.describeQuotaConfigs / alterQuotaConfigs).

A broker that does not offer DescribeClientQuotas / AlterClientQuotas (strom's
own broker keeps no quotas) makes the command fail, naming the API its
ApiVersions answer left out.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import TypeVar

from strom.cli import configs_options as opts
from strom.cli.common import CliError
from strom.cli.formatters import java_double
from strom.client.admin_types import ClientQuotaEntity, QuotaFilterComponent
from strom.client.aio.admin import AIOAdmin
from strom.protocol.errors import ErrorCode, KafkaError

T = TypeVar("T")
_ENTITY = {opts.USERS: "user", opts.CLIENTS: "client-id", opts.IPS: "ip"}
_SHOWN = {"user": "user-principal", "client-id": "client-id", "ip": "ip"}
# Kafka's QuotaConfig names (users and clients; ips have the connection rate only)
CLIENT_QUOTAS = frozenset(
    {
        "producer_byte_rate",
        "consumer_byte_rate",
        "request_percentage",
        "controller_mutation_rate",
    }
)
IP_QUOTAS = frozenset({"connection_creation_rate"})
SCRAM = frozenset({"SCRAM-SHA-256", "SCRAM-SHA-512"})


_API_KEYS = {"DescribeClientQuotas": 48, "AlterClientQuotas": 49}


async def _quota_call(call: Awaitable[T], api: str, action: str, types: list[str]) -> T:
    """Await a quota request; UNSUPPORTED_VERSION becomes an error naming the API."""
    try:
        return await call
    except KafkaError as exc:
        if exc.code != ErrorCode.UNSUPPORTED_VERSION:
            raise
        raise CliError(
            f"The broker does not support {api} (API key {_API_KEYS[api]}): its ApiVersions "
            f"answer lists no version of it, so the quota configs of {' and '.join(types)} "
            f"cannot be {action}."
        ) from None


def components(types: list[str], names: list[str]) -> list[QuotaFilterComponent]:
    """Kafka's getAllClientQuotasConfigs filter: by name, the default (""), or any."""
    if len(names) > len(types):
        raise CliError("More entity names specified than entity types")
    out = []
    for i, entity_type in enumerate(types):
        kind = _ENTITY[entity_type]
        if i >= len(names):
            out.append(QuotaFilterComponent(kind, 2))
        elif names[i] == "":
            out.append(QuotaFilterComponent(kind, 1))
        else:
            out.append(QuotaFilterComponent(kind, 0, names[i]))
    return out


def _entity_text(entity: ClientQuotaEntity) -> str:
    by_type = dict(entity.entries)
    parts = []
    for kind in ("user", "client-id", "ip"):
        if kind in by_type:
            name = by_type[kind]
            shown = _SHOWN[kind]
            parts.append(f"the default {shown}" if not name else f"{shown} '{name}'")
    return ", ".join(parts)


async def describe_quotas(admin: AIOAdmin, types: list[str], names: list[str]) -> None:
    """Print "Quota configs for user-principal 'u' are k=v, ..." per matching entity."""
    found = await _quota_call(
        admin.describe_client_quotas(components(types, names), strict=True),
        "DescribeClientQuotas",
        "described",
        types,
    )
    for entity, values in found.items():
        entries = ", ".join(f"{k}={java_double(v)}" for k, v in values.items())
        print(f"Quota configs for {_entity_text(entity)} are {entries}")


def _check_names(types: list[str], added: dict[str, str], deleted: list[str]) -> None:
    keys = [*added, *deleted]
    if types == [opts.IPS]:
        unknown = [k for k in keys if k not in IP_QUOTAS]
        if unknown:
            raise CliError(
                f"Only connection quota configs can be added for '{opts.IPS}' using "
                f"--bootstrap-server. Unexpected config names: {', '.join(unknown)}"
            )
        return
    if any(k in SCRAM for k in keys) and types != [opts.USERS]:
        raise CliError("SCRAM credentials can be altered only for users (--entity-type users)")
    unknown = [k for k in keys if k not in CLIENT_QUOTAS and k not in SCRAM]
    if unknown:
        kind = "quota" if opts.CLIENTS in types else "quota and SCRAM credential"
        raise CliError(
            f"Only {kind} configs can be added for '{types[-1]}' using --bootstrap-server. "
            f"Unexpected config names: {','.join(unknown)}"
        )


async def alter_quotas(
    admin: AIOAdmin, types: list[str], names: list[str], added: dict[str, str], deleted: list[str]
) -> None:
    """Kafka's alterQuotaConfigs: deleting a quota the entity does not have fails.
    SCRAM-SHA-256/512 keys of a user go through AlterUserScramCredentials."""
    _check_names(types, added, deleted)
    scram_added = {k: added.pop(k) for k in list(added) if k in SCRAM}
    scram_deleted = [k for k in deleted if k in SCRAM]
    deleted = [k for k in deleted if k not in SCRAM]
    if scram_added or scram_deleted:
        await alter_scram(admin, names[0], scram_added, scram_deleted)
    if not added and not deleted:
        return
    values: dict[str, float | None] = {}
    for key, text in added.items():
        try:
            values[key] = float(text)
        except ValueError:
            raise CliError(f"Cannot parse quota configuration value for {key}: {text}") from None
    current = await _quota_call(
        admin.describe_client_quotas(components(types, names), strict=True),
        "DescribeClientQuotas",
        "altered",
        types,
    )
    old = next(iter(current.values()), {})
    bad = [k for k in deleted if k not in old]
    if bad:
        raise CliError(f"Invalid config(s): {','.join(bad)}")
    values.update(dict.fromkeys(deleted))
    entity = ClientQuotaEntity(
        tuple((_ENTITY[t], n or None) for t, n in zip(types, names, strict=True))
    )
    await _quota_call(
        admin.alter_client_quotas(entity, values), "AlterClientQuotas", "altered", types
    )


def parse_scram(key: str, text: str) -> tuple[str, int]:
    """``SCRAM-SHA-256=[iterations=8192,password=secret]`` -> (password, iterations);
    Kafka's default is 4096 iterations."""
    values = dict(item.split("=", 1) for item in text.split(",") if "=" in item)
    if "password" not in values:
        raise CliError(f"{key}: a SCRAM credential needs a password: {key}=[password=...]")
    try:
        iterations = int(values.get("iterations", "4096"))
    except ValueError:
        raise CliError(f"{key}: iterations must be a number") from None
    return values["password"], iterations


async def alter_scram(
    admin: AIOAdmin, user: str, added: dict[str, str], deleted: list[str]
) -> None:
    """Kafka's alterUserScramCredentialConfigs."""
    if not user:
        raise CliError("SCRAM credentials can be altered only for a named user")
    upserts = [(user, key, *parse_scram(key, text)) for key, text in added.items()]
    await admin.alter_user_scram_credentials(upserts, [(user, key) for key in deleted])


async def describe_scram(admin: AIOAdmin, names: list[str]) -> None:
    """``SCRAM credential configs for user-principal 'u' are SCRAM-SHA-256=iterations=N``."""
    try:
        found = await admin.describe_user_scram_credentials(names or None)
    except KafkaError as exc:
        if exc.code != ErrorCode.RESOURCE_NOT_FOUND:
            raise
        return
    for user, mechanisms in found.items():
        entries = ", ".join(f"{m}=iterations={n}" for m, n in mechanisms.items())
        print(f"SCRAM credential configs for user-principal '{user}' are {entries}")
