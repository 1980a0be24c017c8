"""Subscription by regular expression (``SubscribedTopicRegex``): RE2 syntax, as Kafka's
coordinator compiles it with RE2/J, matched against whole topic names.

RE2 has no backreferences, lookaround, atomic groups or possessive quantifiers;
an expression using them is invalid (INVALID_REGULAR_EXPRESSION), as it is for
Kafka. Java's ``(?<name>...)`` groups are accepted.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable

_NOT_RE2 = re.compile(
    r"""\\[1-9]          # backreference
    | \\k<              # named backreference
    | \(\?<?[=!]        # lookahead, lookbehind
    | \(\?>             # atomic group
    | [*+?}]\+          # possessive quantifier
    """,
    re.VERBOSE,
)


class InvalidRegex(ValueError):
    pass


@functools.lru_cache(maxsize=1024)
def compile_regex(pattern: str) -> re.Pattern[str]:
    """The compiled expression; InvalidRegex with the reason when RE2 would refuse it."""
    bad = _NOT_RE2.search(_without_escaped_backslashes(pattern))
    if bad is not None:
        raise InvalidRegex(f"unsupported construct {bad.group(0)!r} at index {bad.start()}")
    try:
        return re.compile(re.sub(r"\(\?<(?=[A-Za-z])", "(?P<", pattern))
    except re.error as e:
        raise InvalidRegex(str(e)) from None


def _without_escaped_backslashes(pattern: str) -> str:
    return pattern.replace("\\\\", "__")


def resolve(pattern: str, topics: Iterable[str]) -> frozenset[str]:
    """The topics the expression matches whole (an invalid expression matches none)."""
    try:
        compiled = compile_regex(pattern)
    except InvalidRegex:
        return frozenset()
    return frozenset(t for t in topics if compiled.fullmatch(t))
