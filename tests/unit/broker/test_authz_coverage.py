"""Every API the broker handles has an authorization rule (what Kafka's KafkaApis
checks), except the four Kafka answers without one: a new API added without a rule
would otherwise be open to every principal once an authorizer is on."""

from __future__ import annotations

import strom.broker.api  # noqa: F401 - registers the handlers and rules
from strom.broker.handlers import AUTHZ_RULES, HANDLERS
from strom.protocol.api_versions import ApiKey

UNCHECKED = {
    ApiKey.API_VERSIONS,
    ApiKey.SASL_HANDSHAKE,
    ApiKey.SASL_AUTHENTICATE,
    ApiKey.DESCRIBE_CLUSTER,  # only its authorized operations depend on the rights
}


def test_every_api_is_authorized() -> None:
    assert set(HANDLERS) - set(AUTHZ_RULES) == UNCHECKED
