"""TLS contexts from Kafka's ``ssl.*`` settings (PEM key and trust stores), for the
broker's listeners and for clients (strom's client, brokers talking to brokers).

Kafka's PEM stores: ``ssl.keystore.type=PEM`` with ``ssl.keystore.location`` (a file
holding the private key and the certificate chain, the key encrypted with
``ssl.key.password`` if at all) or with ``ssl.keystore.key`` and
``ssl.keystore.certificate.chain`` given inline; ``ssl.truststore.type=PEM`` with
``ssl.truststore.location`` or ``ssl.truststore.certificates``. Python's ssl module
(OpenSSL) reads no JKS or PKCS12 store: those are refused with a clear message.
"""

from __future__ import annotations

import contextlib
import os
import ssl
from collections.abc import Callable, Iterator

from strom.common.config_types import ConfigError

Get = Callable[[str], object]
_VERSIONS = {
    "TLSv1": ssl.TLSVersion.TLSv1,
    "TLSv1.1": ssl.TLSVersion.TLSv1_1,
    "TLSv1.2": ssl.TLSVersion.TLSv1_2,
    "TLSv1.3": ssl.TLSVersion.TLSv1_3,
}
_CLIENT_AUTH = {
    "none": ssl.CERT_NONE,
    "requested": ssl.CERT_OPTIONAL,
    "required": ssl.CERT_REQUIRED,
}


def _text(get: Get, key: str) -> str | None:
    value = get(key)
    if value is None or value == "":
        return None
    return str(value)


def _check_pem(get: Get, key: str) -> None:
    kind = (_text(get, key) or "JKS").upper()
    if kind != "PEM":
        raise ConfigError(
            key,
            f"{kind} stores cannot be read: strom's TLS reads PEM only ({key}=PEM, with the "
            "location of a PEM file or the PEM text inline)",
        )


@contextlib.contextmanager
def _pem_file(text: str) -> Iterator[str]:
    """Inline PEM as a private temporary file (the ssl module loads files only)."""
    import tempfile  # not at every broker's start: with inline PEM only

    fd, path = tempfile.mkstemp(prefix="strom-pem-", suffix=".pem")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text.replace("\\n", "\n"))
        yield path
    finally:
        with contextlib.suppress(OSError):
            os.unlink(path)


def _load_keystore(ctx: ssl.SSLContext, get: Get) -> bool:
    """Load the key and certificate chain; False when none is configured."""
    location = _text(get, "ssl.keystore.location")
    key = _text(get, "ssl.keystore.key")
    chain = _text(get, "ssl.keystore.certificate.chain")
    if location is None and key is None and chain is None:
        return False
    _check_pem(get, "ssl.keystore.type")
    password = _text(get, "ssl.key.password") or _text(get, "ssl.keystore.password")
    try:
        if location is not None:
            ctx.load_cert_chain(location, password=password)
            return True
        if key is None or chain is None:
            raise ConfigError(
                "ssl.keystore.key",
                "ssl.keystore.key and ssl.keystore.certificate.chain go together",
            )
        with _pem_file(chain + "\n" + key) as path:
            ctx.load_cert_chain(path, password=password)
    except (OSError, ssl.SSLError) as exc:
        where = location or "ssl.keystore.key"
        raise ConfigError("ssl.keystore.location", f"cannot load {where}: {exc}") from None
    return True


def _load_truststore(ctx: ssl.SSLContext, get: Get) -> bool:
    location = _text(get, "ssl.truststore.location")
    certificates = _text(get, "ssl.truststore.certificates")
    if location is None and certificates is None:
        return False
    _check_pem(get, "ssl.truststore.type")
    try:
        if location is not None:
            ctx.load_verify_locations(cafile=location)
        else:
            ctx.load_verify_locations(cadata=(certificates or "").replace("\\n", "\n"))
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(
            "ssl.truststore.location", f"cannot load the trust store: {exc}"
        ) from None
    return True


def _openssl_cipher(name: str) -> str:
    """A Java (IANA) suite name -> OpenSSL's (TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256 ->
    ECDHE-RSA-AES128-GCM-SHA256); OpenSSL names pass through."""
    if not name.startswith("TLS_") or "_WITH_" not in name:
        return name
    kx, cipher = name[4:].split("_WITH_", 1)
    cipher = cipher.replace("AES_128", "AES128").replace("AES_256", "AES256")
    cipher = cipher.replace("CHACHA20_POLY1305_SHA256", "CHACHA20_POLY1305")
    parts = ([] if kx == "RSA" else [kx.replace("_", "-")]) + [cipher.replace("_", "-")]
    return "-".join(parts)


def _list(value: object) -> list[str]:
    """A list setting: a list (the broker's parsed config) or comma-separated text."""
    if isinstance(value, list):
        return [str(v).strip() for v in value]
    return [v.strip() for v in str(value or "").split(",") if v.strip()]


def _protocols(ctx: ssl.SSLContext, get: Get) -> None:
    names = _list(get("ssl.enabled.protocols"))
    versions = sorted(_VERSIONS[n] for n in names if n in _VERSIONS)
    if versions:
        ctx.minimum_version, ctx.maximum_version = versions[0], versions[-1]
    suites = _list(get("ssl.cipher.suites"))
    tls12 = [_openssl_cipher(s) for s in suites if not s.startswith("TLS_AES")]
    tls12 = [s for s in tls12 if not s.startswith("TLS_CHACHA20")]
    if tls12:
        try:
            ctx.set_ciphers(":".join(tls12))
        except ssl.SSLError:
            raise ConfigError(
                "ssl.cipher.suites", f"no cipher suite of {suites} is available"
            ) from None


def server_context(get: Get) -> ssl.SSLContext:
    """The TLS context of an SSL or SASL_SSL listener (``get`` reads its settings,
    listener prefix applied). ConfigError when it cannot be built."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    if not _load_keystore(ctx, get):
        raise ConfigError(
            "ssl.keystore.location",
            "a TLS listener needs a key store (ssl.keystore.location, or ssl.keystore.key "
            "and ssl.keystore.certificate.chain, with ssl.keystore.type=PEM)",
        )
    client_auth = str(get("ssl.client.auth") or "none")
    ctx.verify_mode = _CLIENT_AUTH[client_auth]
    if not _load_truststore(ctx, get) and ctx.verify_mode != ssl.CERT_NONE:
        raise ConfigError(
            "ssl.truststore.location", f"ssl.client.auth={client_auth} needs a trust store"
        )
    _protocols(ctx, get)
    return ctx


def client_context(get: Get) -> ssl.SSLContext:
    """A client's TLS context: the trust store (else the system's), the key store for
    client authentication, and host name checks unless
    ``ssl.endpoint.identification.algorithm`` is empty."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if not _load_truststore(ctx, get):
        ctx.load_default_certs()
    _load_keystore(ctx, get)
    algorithm = get("ssl.endpoint.identification.algorithm")
    ctx.check_hostname = str(algorithm if algorithm is not None else "https").lower() == "https"
    _protocols(ctx, get)
    return ctx
