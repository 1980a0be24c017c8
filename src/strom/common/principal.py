"""Principals (Kafka's KafkaPrincipal, ``User:alice``), the TLS certificate's
distinguished name as Java prints it, ``ssl.principal.mapping.rules``
(SslPrincipalMapper) and ``sasl.jaas.config`` (JaasConfig), all pure.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import ClassVar, Final

from strom.common.values import Value

USER_TYPE = "User"
ANONYMOUS = "User:ANONYMOUS"


def principal_name(principal: str) -> str:
    return principal.partition(":")[2]


def parse_principal(text: str) -> str:
    """``Type:name`` (SecurityUtils.parseKafkaPrincipal); ValueError without a colon."""
    kind, sep, name = text.partition(":")
    if not sep or not kind:
        raise ValueError(
            f"Invalid principal {text!r}: expected a principal type and name separated by a colon"
        )
    return f"{kind}:{name}"


# -- distinguished names ----------------------------------------------------------------
# Python's ssl module names attributes by their long names; RFC 2253 keywords, as
# X500Principal.getName() emits them.
_RFC2253_KEYWORDS = {
    "commonName": "CN",
    "countryName": "C",
    "localityName": "L",
    "stateOrProvinceName": "ST",
    "organizationName": "O",
    "organizationalUnitName": "OU",
    "streetAddress": "STREET",
    "domainComponent": "DC",
    "userId": "UID",
}
# other attributes go out as their OID (X500Principal prints them as OID=#hex-DER)
_OIDS = {
    "emailAddress": "1.2.840.113549.1.9.1",
    "serialNumber": "2.5.4.5",
    "title": "2.5.4.12",
    "surname": "2.5.4.4",
    "givenName": "2.5.4.42",
    "description": "2.5.4.13",
}


def _escape_rdn_value(value: str) -> str:
    out = []
    for i, c in enumerate(value):
        if c in ',+"\\<>;' or (c == "#" and i == 0) or (c == " " and i in (0, len(value) - 1)):
            out.append("\\" + c)
        else:
            out.append(c)
    return "".join(out)


def distinguished_name(subject: Sequence[Sequence[tuple[str, str]]]) -> str:
    """A subject as ``ssl.SSLSocket.getpeercert()['subject']`` gives it (RDNs in
    certificate order) -> the RFC 2253 string Java's X500Principal.getName() returns:
    the RDNs last first, ``CN=alice,OU=eng,O=acme,C=US``."""
    rdns = []
    for rdn in reversed(list(subject)):
        parts = []
        for attr, value in rdn:
            key = _RFC2253_KEYWORDS.get(attr) or _OIDS.get(attr) or attr
            parts.append(f"{key}={_escape_rdn_value(value)}")
        rdns.append("+".join(parts))
    return ",".join(rdns)


# -- ssl.principal.mapping.rules --------------------------------------------------------
_RULE = r"(DEFAULT)|RULE:((\\.|[^\\/])*)/((\\.|[^\\/])*)/([LU]?).*?|(.*?)"
_RULE_SPLITTER = r"\s*(" + _RULE + r")\s*(,\s*|$)"
# The patterns here are compiled on first use (re's cache), not at import: a broker
# whose listeners keep the DEFAULT rule and no SASL never needs them (issue 15).


class NoMatchingRule(ValueError):
    """No ``ssl.principal.mapping.rules`` rule applies to a name."""


class MappingRule(Value):
    __slots__ = ("default", "lower", "pattern", "replacement", "upper")
    FIELDS: ClassVar[tuple[str, ...]] = ("default", "pattern", "replacement", "lower", "upper")
    default: Final[bool]
    pattern: Final[str]
    replacement: Final[str]
    lower: Final[bool]
    upper: Final[bool]

    def __init__(
        self,
        default: bool = False,
        pattern: str = "",
        replacement: str = "",
        lower: bool = False,
        upper: bool = False,
    ) -> None:
        self.default = default
        self.pattern = pattern
        self.replacement = replacement
        self.lower = lower
        self.upper = upper

    def apply(self, dn: str) -> str | None:
        if self.default:
            return dn
        regex = re.compile(self.pattern)
        if regex.fullmatch(dn) is None:
            return None
        # Java's $1 back references; a literal backslash stays one
        replacement = re.sub(r"\$(\d)", r"\\g<\1>", self.replacement.replace("\\", "\\\\"))
        result = regex.sub(replacement, dn)
        if self.lower:
            return result.lower()
        if self.upper:
            return result.upper()
        return result


def parse_mapping_rules(text: str) -> list[MappingRule]:
    """SslPrincipalMapper.fromRules: ``DEFAULT`` or ``RULE:pattern/replacement/[LU]``,
    comma separated. ValueError for an invalid rule."""
    if text.strip() == "DEFAULT":
        return [MappingRule(default=True)]
    rules: list[MappingRule] = []
    pieces = [m.group(1) for m in re.finditer(_RULE_SPLITTER, text.strip()) if m.group(1)]
    for piece in pieces:
        m = re.match(_RULE, piece)
        if m is None:
            raise ValueError(f"Invalid rule: {piece}")
        if m.end() != len(piece):
            raise ValueError(f"Invalid rule: `{piece}`, unmatched substring: `{piece[m.end() :]}`")
        if m.group(1):
            rules.append(MappingRule(default=True))
        elif m.group(2) is not None:
            rules.append(
                MappingRule(
                    pattern=m.group(2),
                    replacement=m.group(4),
                    lower=m.group(6) == "L",
                    upper=m.group(6) == "U",
                )
            )
        elif m.group(7):
            raise ValueError(f"Invalid rule: {piece}")
    return rules


def map_distinguished_name(rules: Sequence[MappingRule], dn: str) -> str:
    for rule in rules:
        name = rule.apply(dn)
        if name is not None:
            return name
    raise NoMatchingRule(f"No rules apply to {dn}, rules {list(rules)}")


# -- sasl.jaas.config -------------------------------------------------------------------
class JaasEntry(Value):
    __slots__ = ("flag", "login_module", "options")
    FIELDS: ClassVar[tuple[str, ...]] = ("login_module", "flag", "options")
    login_module: Final[str]
    flag: Final[str]
    options: Final[dict[str, str]]

    def __init__(self, login_module: str, flag: str, options: dict[str, str] | None = None) -> None:
        self.login_module = login_module
        self.flag = flag
        self.options = {} if options is None else options


_JAAS_TOKEN = r'\s*(?:"((?:[^"\\]|\\.)*)"|([^\s=;"]+)|(=)|(;))'
_FLAGS = ("required", "requisite", "sufficient", "optional")


def _jaas_tokens(text: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    pos, text = 0, text.strip()
    kinds = ("str", "word", "=", ";")
    token = re.compile(_JAAS_TOKEN)
    while pos < len(text):
        m = token.match(text, pos)
        if m is None or m.end() == pos:
            raise ValueError(f"Invalid JAAS config: unexpected text at {text[pos : pos + 20]!r}")
        pos = m.end()
        kind = next(k for k, g in zip(kinds, m.groups(), strict=True) if g is not None)
        value = m.group(1) if kind == "str" else m.group(kinds.index(kind) + 1)
        tokens.append((kind, re.sub(r"\\(.)", r"\1", value) if kind == "str" else value))
    return tokens


def parse_jaas_config(text: str) -> list[JaasEntry]:
    """``LoginModule flag key="value" key2=value2;`` (one or more entries).
    ValueError when it does not parse."""
    tokens = _jaas_tokens(text)
    entries: list[JaasEntry] = []
    i = 0
    while i < len(tokens):
        if i + 1 >= len(tokens) or tokens[i][0] != "word" or tokens[i + 1][0] != "word":
            raise ValueError("Invalid JAAS config: expected a login module and a control flag")
        module, flag = tokens[i][1], tokens[i + 1][1].lower()
        if flag not in _FLAGS:
            raise ValueError(f"Invalid JAAS config: invalid control flag {tokens[i + 1][1]!r}")
        i += 2
        options: dict[str, str] = {}
        while i < len(tokens) and tokens[i][0] != ";":
            if i + 2 >= len(tokens) or tokens[i + 1][0] != "=" or tokens[i][0] != "word":
                raise ValueError("Invalid JAAS config: expected key=value")
            options[tokens[i][1]] = tokens[i + 2][1]
            i += 3
        if i >= len(tokens):
            raise ValueError("Invalid JAAS config: login module entry not terminated by ';'")
        i += 1
        entries.append(JaasEntry(module, flag, options))
    if not entries:
        raise ValueError("Invalid JAAS config: no login module")
    return entries
