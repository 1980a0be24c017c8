"""Helpers of the authorization rules: the session's rights, and requests split into
what is allowed (handled) and what is not (answered with an error code)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from strom.broker.broker import Broker
from strom.broker.errors import error_response
from strom.broker.handlers import Handler
from strom.broker.session import SESSION
from strom.common.acl import CLUSTER_NAME, AclOperation, ResourceType
from strom.protocol.errors import ErrorCode
from strom.protocol.frame import RequestHeader
from strom.protocol.generated import response_class
from strom.protocol.message import Message, fields

Op = AclOperation
RT = ResourceType
TOPIC_DENIED = ErrorCode.TOPIC_AUTHORIZATION_FAILED
GROUP_DENIED = ErrorCode.GROUP_AUTHORIZATION_FAILED
CLUSTER_DENIED = ErrorCode.CLUSTER_AUTHORIZATION_FAILED
TXN_DENIED = ErrorCode.TRANSACTIONAL_ID_AUTHORIZATION_FAILED
# Kafka's default messages (Errors.X.message()) where it answers with them
MESSAGES: dict[int, str] = {
    TOPIC_DENIED: "Topic authorization failed.",
    GROUP_DENIED: "Group authorization failed.",
    CLUSTER_DENIED: "Cluster authorization failed.",
    TXN_DENIED: "Transactional Id authorization failed.",
}


M = TypeVar("M", bound=Message)


def replaced(message: M, **changes: Any) -> M:
    """A shallow copy of a generated message with some fields changed."""
    copy = type(message)(*(getattr(message, f) for f in fields(message)))
    for name, value in changes.items():
        setattr(copy, name, value)
    return copy


def allowed(broker: Broker, op: AclOperation, resource_type: ResourceType, name: str) -> bool:
    authorizer = broker.authorizer
    return authorizer is None or authorizer.authorize(SESSION.get(), op, resource_type, name)


def cluster_allowed(broker: Broker, op: AclOperation) -> bool:
    return allowed(broker, op, RT.CLUSTER, CLUSTER_NAME)


def refuse(header: RequestHeader, request: Any, code: int) -> Any:
    """The whole request answered with ``code`` (Kafka's getErrorResponse), with the
    exception's default message where the response has a top-level message."""
    resp = error_response(response_class(header.api_key), request, code)
    if code in MESSAGES and hasattr(resp, "error_message") and hasattr(resp, "error_code"):
        resp.error_message = MESSAGES[code]
    return resp


async def split(
    broker: Broker,
    header: RequestHeader,
    req: Any,
    handler: Handler,
    *,
    field: str,
    resp_field: str,
    ok: Callable[[Any], bool],
    code: int,
    message: str | None = None,
) -> Any:
    """Handle the entries of ``req.<field>`` that are ``ok``; answer the others with
    ``code`` (entries of the response's ``resp_field`` mirroring the request's, with
    ``message`` as their error message)."""
    items = getattr(req, field) or []
    good: list[Any] = []
    bad: list[Any] = []
    for item in items:
        (good if ok(item) else bad).append(item)
    if not bad:
        return await handler(broker, header, req)
    denied = refuse(header, replaced(req, **{field: bad}), code)
    if message is not None:
        for entry in getattr(denied, resp_field):
            entry.error_message = message
    if good:
        resp = await handler(broker, header, replaced(req, **{field: good}))
    else:
        resp = refuse(header, replaced(req, **{field: []}), ErrorCode.NONE)
    if resp is None:  # Produce with acks=0
        return None
    getattr(resp, resp_field).extend(getattr(denied, resp_field))
    return resp


def topic_check(
    broker: Broker, op: AclOperation, name_of: Callable[[Any], str | None]
) -> Callable[[Any], bool]:
    """An ``ok`` for :func:`split`: the principal may ``op`` the entry's topic (an entry
    whose name is not known yet, a topic id, is left to the handler)."""

    def ok(item: Any) -> bool:
        name = name_of(item)
        return name is None or allowed(broker, op, RT.TOPIC, name)

    return ok
