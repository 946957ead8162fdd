"""Standard Webhooks signatures (https://www.standardwebhooks.com): secrets and signed headers."""

import base64
import binascii
import hashlib
import hmac
from collections.abc import Sequence
from secrets import token_bytes

SECRET_PREFIX = "whsec_"  # noqa: S105 - the prefix every secret carries, not a secret
SIGNATURE_VERSION = "v1"
NEW_SECRET_BYTES = 32
# The specification's bounds on a secret's decoded length.
MIN_SECRET_BYTES = 24
MAX_SECRET_BYTES = 64


def new_secret() -> str:
    """A fresh endpoint secret: `whsec_` + base64 of 32 random bytes."""
    return SECRET_PREFIX + base64.b64encode(token_bytes(NEW_SECRET_BYTES)).decode("ascii")


def decode_secret(secret: str) -> bytes:
    """The HMAC key inside a `whsec_` secret; ValueError when it is not one."""
    if not secret.startswith(SECRET_PREFIX):
        raise ValueError(f"A webhook secret starts with {SECRET_PREFIX!r}.")
    try:
        key = base64.b64decode(secret.removeprefix(SECRET_PREFIX), validate=True)
    except binascii.Error as exc:
        raise ValueError("A webhook secret is base64 after its prefix.") from exc
    if not MIN_SECRET_BYTES <= len(key) <= MAX_SECRET_BYTES:
        raise ValueError(
            f"A webhook secret holds {MIN_SECRET_BYTES} to {MAX_SECRET_BYTES} bytes,"
            f" not {len(key)}."
        )
    return key


def sign(secrets: Sequence[str], message_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` value: one `v1,<signature>` per secret, space separated.

    During a rotation both the old and the new secret sign, so receivers holding either verify.
    `body` must be exactly the bytes sent: the signature covers bytes, not the JSON they encode.
    """
    # A lone string is a Sequence[str] to the type checker; signing with each character of it
    # would produce signatures nobody can verify.
    if isinstance(secrets, str):
        raise TypeError("sign() takes a sequence of secrets, not a single string.")
    if not secrets:
        raise ValueError("At least one secret is needed to sign.")
    signed = f"{message_id}.{timestamp}.".encode() + body
    return " ".join(
        f"{SIGNATURE_VERSION},{_hmac_base64(decode_secret(secret), signed)}" for secret in secrets
    )


def headers(secrets: Sequence[str], message_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The headers of one delivery attempt of `body` (the timestamp is fresh on each attempt)."""
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(secrets, message_id, timestamp, body),
        "content-type": "application/json",
    }


def _hmac_base64(key: bytes, message: bytes) -> str:
    return base64.b64encode(hmac.new(key, message, hashlib.sha256).digest()).decode("ascii")
