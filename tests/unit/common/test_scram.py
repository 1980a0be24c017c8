"""SCRAM-SHA-256/512 (RFC 5802, RFC 7677) as Kafka speaks it: RFC test vector, both
sides against each other, Kafka's credential text, saslnames and bad messages."""

from __future__ import annotations

import base64

import pytest

from strom.common.sasl import SaslAuthenticationError, SaslCredentialsError
from strom.common.scram import (
    ScramClient,
    ScramCredential,
    ScramServer,
    from_saslname,
    make_credential,
    salted_password,
    to_saslname,
)

# RFC 7677 section 3: user "user", password "pencil"
SALT = base64.b64decode("W22ZaJ0SNY7soEsUEjb6gQ==")
CLIENT_NONCE = "rOprNGfwEbeRWgbNEkqO"
SERVER_NONCE = "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
CLIENT_FIRST = b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO"
SERVER_FIRST = (
    b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
)
CLIENT_FINAL = (
    b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
    b"p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
)
SERVER_FINAL = b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="
MECH = "SCRAM-SHA-256"


def rfc_credential() -> ScramCredential:
    return make_credential(MECH, "pencil", 4096, SALT)


def test_rfc7677_vector_server_side() -> None:
    server = ScramServer(
        MECH, lambda u: rfc_credential() if u == "user" else None, nonce=lambda: SERVER_NONCE
    )
    assert server.evaluate(CLIENT_FIRST) == SERVER_FIRST
    assert not server.complete
    assert server.evaluate(CLIENT_FINAL) == SERVER_FINAL
    assert server.complete and server.username == "user"


def test_rfc7677_vector_client_side() -> None:
    client = ScramClient(MECH, "user", "pencil", nonce=lambda: CLIENT_NONCE)
    assert client.first_message() == CLIENT_FIRST
    assert client.final_message(SERVER_FIRST) == CLIENT_FINAL
    client.verify_server_final(SERVER_FINAL)
    with pytest.raises(SaslAuthenticationError):
        client.verify_server_final(b"v=" + base64.b64encode(b"x" * 32))


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-256", "SCRAM-SHA-512"])
@pytest.mark.parametrize("user", ["alice", "we,ird=name"])
def test_both_sides_agree(mechanism: str, user: str) -> None:
    cred = make_credential(mechanism, "s3cret", 4096)
    server = ScramServer(mechanism, lambda u: cred if u == user else None)
    client = ScramClient(mechanism, user, "s3cret")
    client.verify_server_final(
        server.evaluate(client.final_message(server.evaluate(client.first_message())))
    )
    assert server.complete and server.username == user


def test_wrong_password_and_unknown_user_are_credential_errors() -> None:
    cred = make_credential(MECH, "right", 4096)
    server = ScramServer(MECH, lambda u: cred if u == "alice" else None)
    client = ScramClient(MECH, "alice", "wrong")
    with pytest.raises(SaslCredentialsError, match="Invalid client credentials"):
        server.evaluate(client.final_message(server.evaluate(client.first_message())))
    with pytest.raises(SaslCredentialsError, match="Invalid user credentials"):
        ScramServer(MECH, lambda u: None).evaluate(b"n,,n=nobody,r=abc")


def test_kafka_accepts_a_final_nonce_ending_with_the_servers() -> None:
    """librdkafka before 2.1 sends its nonce twice; Kafka checks endsWith."""
    server = ScramServer(MECH, lambda u: rfc_credential(), nonce=lambda: SERVER_NONCE)
    server.evaluate(CLIENT_FIRST)
    with pytest.raises(SaslCredentialsError, match="Invalid client nonce"):
        server.evaluate(b"c=biws,r=other,p=" + base64.b64encode(b"x" * 32))


@pytest.mark.parametrize(
    "message",
    [b"", b"y", b"n,,", b"n,,r=abc", b"n,,n=a,r=", b"p=x,n,,n=a,r=b", b"\xff\xfe", b"n,,n=a=b,r=c"],
)
def test_bad_client_first_messages(message: bytes) -> None:
    server = ScramServer(MECH, lambda u: rfc_credential())
    with pytest.raises(SaslCredentialsError):
        server.evaluate(message)


def test_too_few_iterations_are_refused() -> None:
    weak = make_credential(MECH, "pw", 1000)
    with pytest.raises(SaslCredentialsError, match="less than the minimum 4096"):
        ScramServer(MECH, lambda u: weak).evaluate(b"n,,n=a,r=b")


def test_credential_text_round_trip_is_kafkas_format() -> None:
    cred = rfc_credential()
    text = cred.to_text()
    assert text.startswith("salt=W22ZaJ0SNY7soEsUEjb6gQ==,stored_key=")
    assert text.endswith(",iterations=4096")
    assert ScramCredential.from_text(text) == cred
    with pytest.raises(ValueError):
        ScramCredential.from_text("salt=x")


def test_saslnames() -> None:
    assert to_saslname("a,b=c") == "a=2Cb=3Dc"
    assert from_saslname("a=2Cb=3Dc") == "a,b=c"
    with pytest.raises(SaslCredentialsError):
        from_saslname("a=41")
    assert len(salted_password("SCRAM-SHA-512", "pw", b"salt", 4096)) == 64
