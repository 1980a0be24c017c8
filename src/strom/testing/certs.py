"""Throwaway TLS certificates for tests and benchmarks: a CA, a server certificate for
the loopback addresses, client certificates with a chosen subject. Made at run time
with the ``cryptography`` package (strom's ``test`` extra); nothing is committed.

Files (PEM, in the directory given): ``ca.pem``; ``<name>.pem`` with the private key
and the certificate chain together, as Kafka's ``ssl.keystore.type=PEM`` file store
reads them (``ssl.keystore.location``); ``<name>.key`` and ``<name>.crt`` apart, as
librdkafka, kafka-python and aiokafka take them.
"""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

LOOPBACK_IPS = tuple(f"127.0.0.{i}" for i in range(1, 12))


@dataclass(frozen=True, slots=True)
class CertFiles:
    ca: Path
    keystore: Path  # key + certificate chain (Kafka's PEM key store file)
    key: Path
    cert: Path


class CertificateAuthority:
    """A certificate authority whose certificates expire in a day."""

    def __init__(self, directory: Path, name: str = "strom-test-ca") -> None:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID

        self._x509, self._hashes, self._ser, self._ec, self._oid = (
            x509,
            hashes,
            serialization,
            ec,
            NameOID,
        )
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self._key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        now = datetime.datetime.now(datetime.UTC)
        self._cert = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(self._key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(self._key, hashes.SHA256())
        )
        self.ca_path = self.dir / "ca.pem"
        self.ca_path.write_bytes(self._cert.public_bytes(serialization.Encoding.PEM))

    def issue(
        self,
        name: str,
        subject: dict[str, str] | None = None,
        *,
        hosts: tuple[str, ...] = ("localhost", *LOOPBACK_IPS),
    ) -> CertFiles:
        """A key and certificate signed by this CA; ``subject``: attribute -> value with
        the RFC 2253 keywords (CN, OU, O, L, ST, C), in the order given (first is the
        certificate's first RDN)."""
        x509, oid = self._x509, self._oid
        keywords = {
            "CN": oid.COMMON_NAME,
            "OU": oid.ORGANIZATIONAL_UNIT_NAME,
            "O": oid.ORGANIZATION_NAME,
            "L": oid.LOCALITY_NAME,
            "ST": oid.STATE_OR_PROVINCE_NAME,
            "C": oid.COUNTRY_NAME,
        }
        attrs = subject or {"CN": name}
        key = self._ec.generate_private_key(self._ec.SECP256R1())
        sans: list[Any] = []
        for host in hosts:
            try:
                sans.append(x509.IPAddress(ipaddress.ip_address(host)))
            except ValueError:
                sans.append(x509.DNSName(host))
        now = datetime.datetime.now(datetime.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(keywords[k], v) for k, v in attrs.items()]))
            .issuer_name(self._cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .sign(self._key, self._hashes.SHA256())
        )
        ser = self._ser
        key_pem = key.private_bytes(ser.Encoding.PEM, ser.PrivateFormat.PKCS8, ser.NoEncryption())
        cert_pem = cert.public_bytes(ser.Encoding.PEM)
        files = CertFiles(
            self.ca_path,
            self.dir / f"{name}.pem",
            self.dir / f"{name}.key",
            self.dir / f"{name}.crt",
        )
        files.key.write_bytes(key_pem)
        files.cert.write_bytes(cert_pem)
        files.keystore.write_bytes(key_pem + cert_pem)
        for path in (files.key, files.keystore):
            path.chmod(0o600)
        return files
