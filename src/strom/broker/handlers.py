"""The handler table: which module of strom.broker handles each API, the handlers'
registration (:func:`handles`) and lookup (:func:`handler_for`, used by
:meth:`strom.broker.broker.Broker.handle`), and the authorization rules
(:func:`authorizes`) with the authorizer that enables them.

A handler module is imported on its API's first request, so that a broker loads the
code and the generated codecs of the APIs it is asked for only.
"""

from __future__ import annotations

import importlib
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from strom.common.config import BrokerConfig
from strom.protocol.api_versions import ApiKey
from strom.protocol.frame import RequestHeader

if TYPE_CHECKING:
    from strom.broker.authorizer import Authorizer
    from strom.broker.broker import Broker


Handler = Callable[["Broker", RequestHeader, Any], Awaitable[Any]]
HANDLERS: dict[int, Handler] = {}
# The module of strom.broker that registers each API's handler (with @handles). A broker
# imports it on the API's first request: it loads the code, and the generated codec, of
# the APIs it is asked for, not of every API at start. (strom.broker.api imports them all;
# tests/unit/broker/test_handler_modules.py checks this table against the registrations.)
HANDLER_MODULES: dict[str, tuple[ApiKey, ...]] = {
    "api_versions": (ApiKey.API_VERSIONS,),
    "acls": (ApiKey.DESCRIBE_ACLS, ApiKey.CREATE_ACLS, ApiKey.DELETE_ACLS),
    "cluster": (
        ApiKey.METADATA,
        ApiKey.DESCRIBE_CLUSTER,
        ApiKey.DESCRIBE_LOG_DIRS,
        ApiKey.ALTER_REPLICA_LOG_DIRS,
    ),
    "configs": (
        ApiKey.DESCRIBE_CONFIGS,
        ApiKey.ALTER_CONFIGS,
        ApiKey.INCREMENTAL_ALTER_CONFIGS,
    ),
    "consumer_group_apis": (ApiKey.CONSUMER_GROUP_HEARTBEAT, ApiKey.CONSUMER_GROUP_DESCRIBE),
    "control_plane": (
        ApiKey.LEADER_AND_ISR,
        ApiKey.UPDATE_METADATA,
        ApiKey.STOP_REPLICA,
        ApiKey.ALTER_PARTITION,
        ApiKey.CONTROLLED_SHUTDOWN,
    ),
    "fetch": (ApiKey.FETCH,),
    "groups": (
        ApiKey.FIND_COORDINATOR,
        ApiKey.JOIN_GROUP,
        ApiKey.SYNC_GROUP,
        ApiKey.HEARTBEAT,
        ApiKey.LEAVE_GROUP,
        ApiKey.OFFSET_COMMIT,
        ApiKey.OFFSET_DELETE,
        ApiKey.OFFSET_FETCH,
        ApiKey.DESCRIBE_GROUPS,
        ApiKey.LIST_GROUPS,
        ApiKey.DELETE_GROUPS,
    ),
    "init_producer": (ApiKey.INIT_PRODUCER_ID,),
    "offsets": (ApiKey.LIST_OFFSETS, ApiKey.OFFSET_FOR_LEADER_EPOCH, ApiKey.DELETE_RECORDS),
    "partition_admin": (
        ApiKey.ELECT_LEADERS,
        ApiKey.ALTER_PARTITION_REASSIGNMENTS,
        ApiKey.LIST_PARTITION_REASSIGNMENTS,
        ApiKey.DESCRIBE_TOPIC_PARTITIONS,
    ),
    "produce": (ApiKey.PRODUCE,),
    "scram": (
        ApiKey.SASL_HANDSHAKE,
        ApiKey.SASL_AUTHENTICATE,
        ApiKey.DESCRIBE_USER_SCRAM_CREDENTIALS,
        ApiKey.ALTER_USER_SCRAM_CREDENTIALS,
    ),
    "topics": (ApiKey.CREATE_TOPICS, ApiKey.DELETE_TOPICS, ApiKey.CREATE_PARTITIONS),
    "transactions": (
        ApiKey.ADD_PARTITIONS_TO_TXN,
        ApiKey.ADD_OFFSETS_TO_TXN,
        ApiKey.END_TXN,
        ApiKey.WRITE_TXN_MARKERS,
        ApiKey.DESCRIBE_TRANSACTIONS,
        ApiKey.LIST_TRANSACTIONS,
        ApiKey.DESCRIBE_PRODUCERS,
    ),
    "txn_offsets": (ApiKey.TXN_OFFSET_COMMIT,),
}
_HANDLER_MODULE: dict[int, str] = {
    key: name for name, keys in HANDLER_MODULES.items() for key in keys
}
# With an authorizer, a request passes its API's rule (strom.broker.authz), which checks
# what Kafka checks and calls the handler with what is allowed.
AuthzRule = Callable[["Broker", RequestHeader, Any, Handler], Awaitable[Any]]
AUTHZ_RULES: dict[int, AuthzRule] = {}


def handles(api_key: int) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        HANDLERS[api_key] = fn
        return fn

    return register


def authorizes(*api_keys: int) -> Callable[[AuthzRule], AuthzRule]:
    def register(fn: AuthzRule) -> AuthzRule:
        for api_key in api_keys:
            AUTHZ_RULES[api_key] = fn
        return fn

    return register


def handler_for(api_key: int) -> Handler | None:
    """The handler of ``api_key`` (None: not an API the broker handles), its module
    imported on the API's first request."""
    handler = HANDLERS.get(api_key)
    if handler is None and api_key in _HANDLER_MODULE:
        importlib.import_module(f"strom.broker.{_HANDLER_MODULE[api_key]}")  # @handles
        handler = HANDLERS.get(api_key)
    return handler


def load_authorizer(config: BrokerConfig) -> Authorizer | None:
    """The ACL authorizer of ``authorizer.class.name`` (None without one), with the
    authorization rule of every API registered (strom.broker.authz): both are imported
    only by a broker that has an authorizer."""
    if not config.get_str("authorizer.class.name"):
        return None
    from strom.broker import authz  # noqa: F401 - registers the rules (@authorizes)
    from strom.broker.authorizer import Authorizer

    return Authorizer.from_config(config)
