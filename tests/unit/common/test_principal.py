"""Distinguished names as Java prints them, ssl.principal.mapping.rules (Kafka's
SslPrincipalMapperTest cases) and sasl.jaas.config parsing."""

from __future__ import annotations

import pytest

from strom.common.principal import (
    MappingRule,
    NoMatchingRule,
    distinguished_name,
    map_distinguished_name,
    parse_jaas_config,
    parse_mapping_rules,
)


def test_distinguished_name_is_rfc2253_most_specific_first() -> None:
    subject = (
        (("countryName", "US"),),
        (("organizationName", "Acme, Inc"),),
        (("commonName", "alice"),),
    )
    assert distinguished_name(subject) == "CN=alice,O=Acme\\, Inc,C=US"
    assert distinguished_name(((("commonName", " x"),),)) == "CN=\\ x"


@pytest.mark.parametrize(
    ("rules", "dn", "name"),
    [
        ("DEFAULT", "CN=kafka1,OU=Eng,O=Acme", "CN=kafka1,OU=Eng,O=Acme"),
        (
            "RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/,DEFAULT",
            "CN=duke,OU=ServiceUsers,O=Org,C=US",
            "duke",
        ),
        (
            "RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/,DEFAULT",
            "CN=duke,OU=Admin,O=Org",
            "CN=duke,OU=Admin,O=Org",
        ),
        (
            "RULE:^CN=(.*?),OU=(.*?),O=(.*?),L=(.*?),ST=(.*?),C=(.*?)$/$1@$2/L",
            "CN=Duke,OU=JavaSoft,O=Sun,L=Santa Clara,ST=CA,C=US",
            "duke@javasoft",
        ),
        ("RULE:^.*[Cc][Nn]=([a-zA-Z0-9.]*).*$/$1/U", "OU=x,CN=kafka-server.1,O=y", "KAFKA"),
        ("RULE:^CN=([^,ADEFLTU,]+)(,.*|$)/$1/,DEFAULT", "CN=duke,OU=x", "duke"),
    ],
)
def test_mapping_rules(rules: str, dn: str, name: str) -> None:
    assert map_distinguished_name(parse_mapping_rules(rules), dn) == name


def test_no_matching_rule_and_invalid_rules() -> None:
    rules = parse_mapping_rules("RULE:^CN=(.*)$/$1/")
    with pytest.raises(NoMatchingRule):
        map_distinguished_name(rules, "OU=x")
    for bad in ["RULE:CN=x", "RULE:/x/L/extra", "WHATEVER"]:
        with pytest.raises(ValueError):
            parse_mapping_rules(bad)


def test_jaas_config() -> None:
    (entry,) = parse_jaas_config(
        'org.apache.kafka.common.security.plain.PlainLoginModule required username="admin" '
        'password="a\\"b" user_alice=alice-secret;'
    )
    assert entry.login_module.endswith("PlainLoginModule")
    assert entry.flag == "required"
    assert entry.options == {"username": "admin", "password": 'a"b', "user_alice": "alice-secret"}
    for bad in ["", "Module;", "Module required user=x", "Module maybe;", "Module required x;"]:
        with pytest.raises(ValueError):
            parse_jaas_config(bad)


def test_the_default_rule_alone_parses_as_the_rule_list_does() -> None:
    # "DEFAULT" takes a short path (no pattern compiled at a broker's start); the same
    # rule inside a longer list goes through the parser
    assert parse_mapping_rules(" DEFAULT ") == [MappingRule(default=True)]
    assert parse_mapping_rules("DEFAULT,DEFAULT") == [MappingRule(default=True)] * 2
