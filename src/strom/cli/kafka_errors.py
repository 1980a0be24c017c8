"""Errors as Kafka's tools print them: the Java exception's class name and message.

A broker's error message, when it sent one, is the exception's message; otherwise
Kafka uses the error code's default message (``Errors``' table), given here for the
codes that elections and reassignments answer.
"""

from __future__ import annotations

from strom.protocol.errors import ErrorCode, KafkaError

_PACKAGE = "org.apache.kafka.common.errors."

# Exception classes whose names are not the error code's in CamelCase.
_CLASSES = {
    ErrorCode.CLUSTER_AUTHORIZATION_FAILED: "ClusterAuthorizationException",
    ErrorCode.TOPIC_AUTHORIZATION_FAILED: "TopicAuthorizationException",
    ErrorCode.REQUEST_TIMED_OUT: "TimeoutException",
    ErrorCode.UNKNOWN_SERVER_ERROR: "UnknownServerException",
    ErrorCode.INVALID_TOPIC_EXCEPTION: "InvalidTopicException",
}

DEFAULT_MESSAGES = {
    ErrorCode.UNKNOWN_SERVER_ERROR: (
        "The server experienced an unexpected error when processing the request."
    ),
    ErrorCode.UNKNOWN_TOPIC_OR_PARTITION: "This server does not host this topic-partition.",
    ErrorCode.REQUEST_TIMED_OUT: "The request timed out.",
    ErrorCode.CLUSTER_AUTHORIZATION_FAILED: "Cluster authorization failed.",
    ErrorCode.TOPIC_AUTHORIZATION_FAILED: "Topic authorization failed.",
    ErrorCode.INVALID_REPLICA_ASSIGNMENT: "Replica assignment in request is not valid.",
    ErrorCode.NOT_CONTROLLER: "This is not the correct controller for this cluster.",
    ErrorCode.INVALID_REQUEST: (
        "This most likely occurs because of a request being malformed by the client "
        "library or the message was sent to an incompatible broker. See the broker logs "
        "for more details."
    ),
    ErrorCode.REASSIGNMENT_IN_PROGRESS: "A partition reassignment is in progress.",
    ErrorCode.PREFERRED_LEADER_NOT_AVAILABLE: "The preferred leader was not available.",
    ErrorCode.ELIGIBLE_LEADERS_NOT_AVAILABLE: (
        "Eligible topic partition leaders are not available."
    ),
    ErrorCode.ELECTION_NOT_NEEDED: "Leader election not needed for topic partition.",
    ErrorCode.NO_REASSIGNMENT_IN_PROGRESS: "No partition reassignment is in progress.",
}


def exception_class(code: ErrorCode) -> str:
    """The Java exception's full class name for an error code."""
    name = _CLASSES.get(code)
    if name is None:
        name = "".join(word.capitalize() for word in code.name.split("_")) + "Exception"
    return _PACKAGE + name


def exception_message(err: KafkaError) -> str:
    """The exception's getMessage(): the broker's message (what follows the code's name
    in the client's text), else the code's default; strom's own text otherwise."""
    text = str(err)
    if text.endswith(err.code.name):
        return DEFAULT_MESSAGES.get(err.code, err.code.name)
    _, marker, message = text.partition(f"{err.code.name}: ")
    return message if marker else text


def exception_text(err: KafkaError) -> str:
    """The exception's toString(): ``class name: message``."""
    return f"{exception_class(err.code)}: {exception_message(err)}"
