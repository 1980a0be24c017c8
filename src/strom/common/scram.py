"""SCRAM-SHA-256 and SCRAM-SHA-512 (RFC 5802, RFC 7677) as Kafka speaks them, sans-IO.

Kafka's details (ScramSaslServer, ScramMessages, ScramFormatter): the GS2 header is
``n,,`` or ``n,a=authzid,`` (no channel binding, so ``c=biws``); user names are
saslnames (``=`` as ``=3D``, ``,`` as ``=2C``); at least 4096 iterations; a stored
credential is ``salt=B64,stored_key=B64,server_key=B64,iterations=N`` (the value
of the ``SCRAM-SHA-256`` key under /config/users/<user> in ZooKeeper).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass

from strom.common.sasl import SaslAuthenticationError, SaslCredentialsError

MIN_ITERATIONS = 4096
MAX_ITERATIONS = 16384  # AlterUserScramCredentials refuses more ("Too many iterations")
HASHES = {"SCRAM-SHA-256": "sha256", "SCRAM-SHA-512": "sha512"}
# the mechanism's type byte in AlterUserScramCredentials / DescribeUserScramCredentials
MECHANISM_TYPES = {"SCRAM-SHA-256": 1, "SCRAM-SHA-512": 2}
MECHANISM_NAMES = {v: k for k, v in MECHANISM_TYPES.items()}


@dataclass(frozen=True, slots=True)
class ScramCredential:
    salt: bytes
    stored_key: bytes
    server_key: bytes
    iterations: int

    def to_text(self) -> str:
        """ScramCredentialUtils.credentialToString."""
        b64 = base64.b64encode
        return (
            f"salt={b64(self.salt).decode()},stored_key={b64(self.stored_key).decode()},"
            f"server_key={b64(self.server_key).decode()},iterations={self.iterations}"
        )

    @classmethod
    def from_text(cls, text: str) -> ScramCredential:
        try:
            fields = dict(item.split("=", 1) for item in text.split(","))
            return cls(
                base64.b64decode(fields["salt"], validate=True),
                base64.b64decode(fields["stored_key"], validate=True),
                base64.b64decode(fields["server_key"], validate=True),
                int(fields["iterations"]),
            )
        except (KeyError, ValueError, binascii.Error) as exc:
            raise ValueError(f"invalid SCRAM credential: {exc}") from None


def _hmac(hash_name: str, key: bytes, data: bytes) -> bytes:
    return hmac.new(key, data, hash_name).digest()


def salted_password(mechanism: str, password: str, salt: bytes, iterations: int) -> bytes:
    return hashlib.pbkdf2_hmac(HASHES[mechanism], password.encode(), salt, iterations)


def credential_from_salted(
    mechanism: str, salted: bytes, salt: bytes, iterations: int
) -> ScramCredential:
    h = HASHES[mechanism]
    client_key = _hmac(h, salted, b"Client Key")
    stored_key = hashlib.new(h, client_key).digest()
    server_key = _hmac(h, salted, b"Server Key")
    return ScramCredential(salt, stored_key, server_key, iterations)


def make_credential(
    mechanism: str, password: str, iterations: int = MIN_ITERATIONS, salt: bytes | None = None
) -> ScramCredential:
    salt = salt if salt is not None else secrets.token_bytes(32)
    return credential_from_salted(
        mechanism, salted_password(mechanism, password, salt, iterations), salt, iterations
    )


def to_saslname(username: str) -> str:
    return username.replace("=", "=3D").replace(",", "=2C")


def from_saslname(name: str) -> str:
    """The user name of a saslname; every ``=`` must start ``=2C`` or ``=3D``."""
    if any(c == "=" and name[i : i + 3] not in ("=2C", "=3D") for i, c in enumerate(name)):
        raise SaslCredentialsError(f"Invalid username: {name}")
    return name.replace("=2C", ",").replace("=3D", "=")


def _nonce() -> str:
    return secrets.token_urlsafe(24)


def _attrs(message: str, *names: str) -> dict[str, str]:
    """``k=v`` attributes of a SCRAM message, in order, named ``names`` first."""
    values: dict[str, str] = {}
    items = message.split(",")
    for i, item in enumerate(items):
        key, eq, value = item.partition("=")
        if not eq or len(key) != 1:
            raise SaslCredentialsError(f"Invalid SCRAM message: {message!r}")
        if i < len(names) and key != names[i]:
            raise SaslCredentialsError(f"Invalid SCRAM message: {message!r}")
        values.setdefault(key, value)
    return values


class ScramServer:
    """ScramSaslServer: client-first -> server-first -> client-final -> server-final."""

    def __init__(
        self,
        mechanism: str,
        lookup: Callable[[str], ScramCredential | None],
        nonce: Callable[[], str] = _nonce,
    ) -> None:
        self.mechanism = mechanism
        self._hash = HASHES[mechanism]
        self._lookup = lookup
        self._nonce = nonce
        self._state = 0
        self._credential: ScramCredential | None = None
        self._client_first_bare = ""
        self._server_first = ""
        self._nonce_full = ""
        self.complete = False
        self.username = ""
        self.credential_expiry_ms: int | None = None

    def evaluate(self, token: bytes) -> bytes:
        try:
            text = token.decode("utf-8")
        except UnicodeDecodeError:
            raise SaslCredentialsError("Invalid SCRAM message: not UTF-8") from None
        if self._state == 0:
            return self._client_first(text)
        if self._state == 1:
            return self._client_final(text)
        raise SaslCredentialsError("Unexpected SCRAM message after authentication completed")

    def _client_first(self, text: str) -> bytes:
        if text.startswith("n,,"):
            authzid, bare = "", text[3:]
        elif text.startswith("n,a="):
            authzid, _, bare = text[4:].partition(",")
        else:
            raise SaslCredentialsError("Invalid SCRAM client first message (GS2 header)")
        attrs = _attrs(bare, "n", "r")
        username = from_saslname(attrs["n"])
        if not attrs["r"]:
            raise SaslCredentialsError("Invalid SCRAM client first message: empty nonce")
        if attrs.get("tokenauth") is not None:
            raise SaslCredentialsError("delegation tokens are not supported")
        credential = self._lookup(username)
        if credential is None:
            raise SaslCredentialsError("Authentication failed: Invalid user credentials")
        if credential.iterations < MIN_ITERATIONS:
            raise SaslCredentialsError(
                f"Iterations {credential.iterations} is less than the minimum "
                f"{MIN_ITERATIONS} for {self.mechanism}"
            )
        if authzid and from_saslname(authzid) != username:
            raise SaslAuthenticationError(
                "Authentication failed: Client requested an authorization id that is different "
                "from username"
            )
        self.username = username
        self._credential = credential
        self._client_first_bare = bare
        self._nonce_full = attrs["r"] + self._nonce()
        salt = base64.b64encode(credential.salt).decode()
        self._server_first = f"r={self._nonce_full},s={salt},i={credential.iterations}"
        self._state = 1
        return self._server_first.encode()

    def _client_final(self, text: str) -> bytes:
        attrs = _attrs(text, "c", "r")
        without_proof, sep, proof_b64 = text.rpartition(",p=")
        # Kafka checks endsWith (not equals): librdkafka before 2.1 sends the client
        # nonce twice, and Kafka accepts it
        if not sep or not attrs["r"].endswith(self._nonce_full):
            raise SaslCredentialsError("Invalid client nonce in the final client message.")
        if attrs["c"] not in ("biws", "eSws"):  # "n,," or "y,," without channel binding
            raise SaslCredentialsError("Invalid channel binding in the final client message.")
        try:
            proof = base64.b64decode(proof_b64, validate=True)
        except binascii.Error:
            raise SaslCredentialsError("Invalid client proof") from None
        cred = self._credential
        assert cred is not None
        auth_message = f"{self._client_first_bare},{self._server_first},{without_proof}".encode()
        signature = _hmac(self._hash, cred.stored_key, auth_message)
        if len(proof) != len(signature):
            raise SaslCredentialsError("Invalid client credentials")
        client_key = bytes(a ^ b for a, b in zip(proof, signature, strict=True))
        if not hmac.compare_digest(hashlib.new(self._hash, client_key).digest(), cred.stored_key):
            raise SaslCredentialsError("Invalid client credentials")
        server_signature = _hmac(self._hash, cred.server_key, auth_message)
        self._state = 2
        self.complete = True
        return f"v={base64.b64encode(server_signature).decode()}".encode()


class ScramClient:
    """The client side (ScramSaslClient), for strom's client and inter-broker SASL."""

    def __init__(
        self, mechanism: str, username: str, password: str, nonce: Callable[[], str] = _nonce
    ) -> None:
        self.mechanism = mechanism
        self._hash = HASHES[mechanism]
        self._username = username
        self._password = password
        self._client_nonce = nonce()
        self._client_first_bare = f"n={to_saslname(username)},r={self._client_nonce}"
        self._auth_message = b""
        self._salted = b""

    def first_message(self) -> bytes:
        return f"n,,{self._client_first_bare}".encode()

    def final_message(self, server_first: bytes) -> bytes:
        text = server_first.decode("utf-8", "replace")
        if text.startswith("e="):
            raise SaslAuthenticationError(f"SCRAM error from the server: {text[2:]}")
        attrs = _attrs(text, "r", "s", "i")
        if not attrs["r"].startswith(self._client_nonce):
            raise SaslAuthenticationError("Invalid server nonce: does not start with client nonce")
        iterations = int(attrs["i"])
        if iterations < MIN_ITERATIONS:
            raise SaslAuthenticationError(
                f"Requested iterations {iterations} is less than the minimum {MIN_ITERATIONS}"
            )
        salt = base64.b64decode(attrs["s"])
        self._salted = salted_password(self.mechanism, self._password, salt, iterations)
        without_proof = f"c=biws,r={attrs['r']}"
        self._auth_message = f"{self._client_first_bare},{text},{without_proof}".encode()
        client_key = _hmac(self._hash, self._salted, b"Client Key")
        stored_key = hashlib.new(self._hash, client_key).digest()
        signature = _hmac(self._hash, stored_key, self._auth_message)
        proof = bytes(a ^ b for a, b in zip(client_key, signature, strict=True))
        return f"{without_proof},p={base64.b64encode(proof).decode()}".encode()

    def verify_server_final(self, server_final: bytes) -> None:
        text = server_final.decode("utf-8", "replace")
        if text.startswith("e="):
            raise SaslAuthenticationError(f"SCRAM error from the server: {text[2:]}")
        server_key = _hmac(self._hash, self._salted, b"Server Key")
        expected = _hmac(self._hash, server_key, self._auth_message)
        got = base64.b64decode(_attrs(text, "v")["v"])
        if not hmac.compare_digest(expected, got):
            raise SaslAuthenticationError("Invalid server signature in server final message")
