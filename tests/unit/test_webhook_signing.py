"""Our signatures verify with the `standardwebhooks` library, as a receiver would check them."""

import base64
import json
import time

import pytest
from standardwebhooks import Webhook, WebhookVerificationError

from app.domain.webhook.signing import decode_secret, headers, new_secret, sign

MESSAGE_ID = "msg_0190b6f2-7c2e-7d4a-8f00-3c1d2e4f5a6b"
BODY = json.dumps(
    {"id": MESSAGE_ID, "type": "customer.updated", "data": {"name": "山田 太郎"}},
    ensure_ascii=False,
    separators=(",", ":"),
).encode()


def _now() -> int:
    return int(time.time())


def test_new_secret_is_whsec_and_32_random_bytes() -> None:
    secret = new_secret()
    assert secret.startswith("whsec_")
    assert len(decode_secret(secret)) == 32
    assert new_secret() != secret


@pytest.mark.parametrize(
    "secret",
    [
        "",
        "whsec_",
        base64.b64encode(bytes(32)).decode(),  # no prefix
        "whsec_not base64!",
        "whsec_" + base64.b64encode(bytes(32)).decode().rstrip("="),  # padding missing
        "whsec_" + base64.b64encode(bytes(16)).decode(),  # too short
        "whsec_" + base64.b64encode(bytes(65)).decode(),  # too long
    ],
)
def test_decode_secret_refuses_malformed_secrets(secret: str) -> None:
    with pytest.raises(ValueError, match="webhook secret"):
        decode_secret(secret)


def test_signature_verifies_with_the_standard_library() -> None:
    secret = new_secret()
    sent = headers([secret], MESSAGE_ID, _now(), BODY)
    assert Webhook(secret).verify(BODY, sent) == json.loads(BODY)
    assert sent["webhook-id"] == MESSAGE_ID
    assert sent["content-type"] == "application/json"
    assert sent["webhook-signature"].startswith("v1,")


def test_signature_matches_the_specification_vector() -> None:
    # The example in the Standard Webhooks specification and its reference libraries.
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    body = b'{"test": 2432232314}'
    signature = sign([secret], "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body)
    assert signature == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_during_rotation_each_secret_verifies() -> None:
    old, new = new_secret(), new_secret()
    sent = headers([old, new], MESSAGE_ID, _now(), BODY)
    assert len(sent["webhook-signature"].split(" ")) == 2
    Webhook(old).verify(BODY, sent, json_parse=False)
    Webhook(new).verify(BODY, sent, json_parse=False)
    with pytest.raises(WebhookVerificationError):
        Webhook(new_secret()).verify(BODY, sent)


def test_tampered_body_fails() -> None:
    secret = new_secret()
    sent = headers([secret], MESSAGE_ID, _now(), BODY)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(BODY.replace("太郎".encode(), "次郎".encode()), sent)


def test_the_bytes_signed_are_the_bytes_sent() -> None:
    # The same JSON serialised differently is different bytes, and must not verify: the
    # signature covers exactly what goes on the wire.
    secret = new_secret()
    sent = headers([secret], MESSAGE_ID, _now(), BODY)
    reserialised = json.dumps(json.loads(BODY)).encode()
    assert json.loads(reserialised) == json.loads(BODY)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(reserialised, sent)
    Webhook(secret).verify(BODY, sent, json_parse=False)


def test_changed_timestamp_fails() -> None:
    secret = new_secret()
    timestamp = _now()
    sent = headers([secret], MESSAGE_ID, timestamp, BODY)
    with pytest.raises(WebhookVerificationError, match="No matching signature"):
        Webhook(secret).verify(BODY, {**sent, "webhook-timestamp": str(timestamp - 1)})


def test_stale_timestamp_fails() -> None:
    secret = new_secret()
    sent = headers([secret], MESSAGE_ID, _now() - 600, BODY)
    with pytest.raises(WebhookVerificationError, match="too old"):
        Webhook(secret).verify(BODY, sent)


def test_changed_id_fails() -> None:
    secret = new_secret()
    sent = headers([secret], MESSAGE_ID, _now(), BODY)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(BODY, {**sent, "webhook-id": "msg_other"})


def test_sign_needs_a_sequence_of_secrets() -> None:
    with pytest.raises(ValueError, match="At least one secret"):
        sign([], MESSAGE_ID, _now(), BODY)
    with pytest.raises(TypeError):
        sign(new_secret(), MESSAGE_ID, _now(), BODY)
