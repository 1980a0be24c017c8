"""Validation of topic and group names, as Kafka does it."""

from __future__ import annotations

import re

MAX_TOPIC_NAME_LENGTH = 249
_LEGAL = re.compile(r"^[a-zA-Z0-9._-]+$")
OFFSETS_TOPIC = "__consumer_offsets"  # the group coordinator's
TXN_TOPIC = "__transaction_state"  # the transaction coordinator's
INTERNAL_TOPICS = frozenset({OFFSETS_TOPIC, TXN_TOPIC})


def topic_name_problem(name: str | None) -> str | None:
    """None when ``name`` is a legal topic name, else Kafka's explanation."""
    if name is None or name == "":
        return "Topic name is illegal, it can't be empty"
    if name in (".", ".."):
        return 'Topic name cannot be "." or ".."'
    if len(name) > MAX_TOPIC_NAME_LENGTH:
        return (
            f"Topic name is illegal, it can't be longer than {MAX_TOPIC_NAME_LENGTH} characters, "
            f"topic name: {name}"
        )
    if not _LEGAL.match(name):
        return (
            f'Topic name "{name}" is illegal, it contains a character other than ASCII '
            "alphanumerics, '.', '_' and '-'"
        )
    return None


def has_collision_chars(name: str) -> bool:
    return "." in name or "_" in name


def collision_key(name: str) -> str:
    """Topics that differ only in '.' vs '_' collide in metric names; Kafka refuses both."""
    return name.replace(".", "_")
