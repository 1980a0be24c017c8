"""Authorization of every API as Kafka's KafkaApis does it, one rule per API
(registered with :func:`strom.broker.handlers.authorizes`): the rule checks the
principal's rights through the broker's authorizer, answers what is refused with
Kafka's error codes, and calls the handler with only what is allowed. Without an
authorizer no rule runs (the request path costs nothing extra)."""

from strom.broker.authz import admin, clients, groups, txn

__all__ = ["admin", "clients", "groups", "txn"]
