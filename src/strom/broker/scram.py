"""DescribeUserScramCredentials and AlterUserScramCredentials (KIP-554, as
ZkAdminManager answers them), and SaslHandshake / SaslAuthenticate after
authentication (Kafka's KafkaApis: ILLEGAL_SASL_STATE; strom.server authenticates).

Credentials live in the metadata store (the embedded file, or /config/users in
ZooKeeper): the salt and iterations the client chose, and the stored and server
keys computed here from its salted password, never the password.
"""

from __future__ import annotations

from collections import Counter

from strom.broker.broker import Broker
from strom.broker.handlers import handles
from strom.common.scram import (
    MAX_ITERATIONS,
    MECHANISM_NAMES,
    MECHANISM_TYPES,
    MIN_ITERATIONS,
    ScramCredential,
    credential_from_salted,
)
from strom.protocol.api_versions import ApiKey
from strom.protocol.errors import ErrorCode
from strom.protocol.frame import RequestHeader
from strom.protocol.generated.alter_user_scram_credentials import (
    AlterUserScramCredentialsRequest,
    AlterUserScramCredentialsResponse,
)
from strom.protocol.generated.describe_user_scram_credentials import (
    DescribeUserScramCredentialsRequest,
    DescribeUserScramCredentialsResponse,
)
from strom.protocol.generated.sasl_authenticate import (
    SaslAuthenticateRequest,
    SaslAuthenticateResponse,
)
from strom.protocol.generated.sasl_handshake import SaslHandshakeRequest, SaslHandshakeResponse

DescribeResult = DescribeUserScramCredentialsResponse.DescribeUserScramCredentialsResult
CredentialInfo = DescribeUserScramCredentialsResponse.CredentialInfo
AlterResult = AlterUserScramCredentialsResponse.AlterUserScramCredentialsResult
UNKNOWN_MECHANISM = "Unknown SCRAM mechanism"
DUPLICATE = "A user credential cannot be altered twice in the same request"


@handles(ApiKey.SASL_HANDSHAKE)
async def handle_sasl_handshake(
    broker: Broker, header: RequestHeader, req: SaslHandshakeRequest
) -> SaslHandshakeResponse:
    return SaslHandshakeResponse(ErrorCode.ILLEGAL_SASL_STATE, [])


@handles(ApiKey.SASL_AUTHENTICATE)
async def handle_sasl_authenticate(
    broker: Broker, header: RequestHeader, req: SaslAuthenticateRequest
) -> SaslAuthenticateResponse:
    return SaslAuthenticateResponse(
        ErrorCode.ILLEGAL_SASL_STATE,
        "SaslAuthenticate request received after successful authentication",
        b"",
        0,
    )


@handles(ApiKey.DESCRIBE_USER_SCRAM_CREDENTIALS)
async def handle_describe_user_scram_credentials(
    broker: Broker, header: RequestHeader, req: DescribeUserScramCredentialsRequest
) -> DescribeUserScramCredentialsResponse:
    store = broker.store
    names = [u.name for u in req.users] if req.users else store.scram_users()
    counts = Counter(names)
    results = []
    for name in dict.fromkeys(names):
        if counts[name] > 1:
            results.append(
                DescribeResult(
                    name,
                    ErrorCode.DUPLICATE_RESOURCE,
                    "Cannot describe SCRAM credentials for the same user twice in a single request",
                    [],
                )
            )
            continue
        creds = store.scram_credentials(name)
        if not creds:
            results.append(
                DescribeResult(
                    name,
                    ErrorCode.RESOURCE_NOT_FOUND,
                    "Attempt to describe a user credential that does not exist",
                    [],
                )
            )
            continue
        infos = [CredentialInfo(MECHANISM_TYPES[m], c.iterations) for m, c in sorted(creds.items())]
        results.append(DescribeResult(name, ErrorCode.NONE, None, infos))
    return DescribeUserScramCredentialsResponse(error_code=0, error_message=None, results=results)


def _delete_problem(
    broker: Broker, d: AlterUserScramCredentialsRequest.ScramCredentialDeletion
) -> tuple[int, str] | None:
    if not d.name:
        return ErrorCode.UNACCEPTABLE_CREDENTIAL, "Username must not be empty"
    if d.mechanism not in MECHANISM_NAMES:
        return ErrorCode.UNSUPPORTED_SASL_MECHANISM, UNKNOWN_MECHANISM
    if MECHANISM_NAMES[d.mechanism] not in broker.store.scram_credentials(d.name):
        return (
            ErrorCode.RESOURCE_NOT_FOUND,
            "Attempt to delete a user credential that does not exist",
        )
    return None


def _upsert_problem(u: AlterUserScramCredentialsRequest.ScramCredentialUpsertion) -> str | None:
    if not u.name:
        return "Username must not be empty"
    if u.mechanism not in MECHANISM_NAMES:
        return UNKNOWN_MECHANISM
    if u.iterations < MIN_ITERATIONS:
        return "Too few iterations"
    if u.iterations > MAX_ITERATIONS:
        return "Too many iterations"
    return None


@handles(ApiKey.ALTER_USER_SCRAM_CREDENTIALS)
async def handle_alter_user_scram_credentials(
    broker: Broker, header: RequestHeader, req: AlterUserScramCredentialsRequest
) -> AlterUserScramCredentialsResponse:
    pairs = Counter(
        [(d.name, d.mechanism) for d in req.deletions]
        + [(u.name, u.mechanism) for u in req.upsertions]
    )
    users = list(dict.fromkeys([d.name for d in req.deletions] + [u.name for u in req.upsertions]))
    errors: dict[str, tuple[int, str]] = {}
    for (name, _), count in pairs.items():
        if count > 1:
            errors.setdefault(name, (ErrorCode.DUPLICATE_RESOURCE, DUPLICATE))
    for d in req.deletions:
        problem = _delete_problem(broker, d)
        if problem is not None:
            errors.setdefault(d.name, problem)
    for u in req.upsertions:
        message = _upsert_problem(u)
        if message is not None:
            code = (
                ErrorCode.UNSUPPORTED_SASL_MECHANISM
                if message == UNKNOWN_MECHANISM
                else ErrorCode.UNACCEPTABLE_CREDENTIAL
            )
            errors.setdefault(u.name, (code, message))
    upserts: list[tuple[str, str, ScramCredential]] = []
    for u in req.upsertions:
        if u.name not in errors:
            mechanism = MECHANISM_NAMES[u.mechanism]
            cred = credential_from_salted(mechanism, u.salted_password, u.salt, u.iterations)
            upserts.append((u.name, mechanism, cred))
    deletions = [
        (d.name, MECHANISM_NAMES[d.mechanism]) for d in req.deletions if d.name not in errors
    ]
    if upserts or deletions:
        await broker.store_call(broker.store.alter_scram, upserts, deletions)
    return AlterUserScramCredentialsResponse(
        results=[AlterResult(name, *errors.get(name, (ErrorCode.NONE, None))) for name in users]
    )
