"""Signing the sandbox's webhooks exactly as the providers do, so receivers verify them with
the providers' own validators.

- Twilio: ``X-Twilio-Signature`` = base64(HMAC-SHA1(auth token, URL + sorted form params)),
  computed by the SDK's ``RequestValidator`` itself.
- SendGrid: ECDSA P-256 / SHA-256 over ``timestamp + raw body``; the signature (base64 DER) in
  ``X-Twilio-Email-Event-Webhook-Signature``, the timestamp in ``…-Timestamp``. The public key
  is published as base64 DER SubjectPublicKeyInfo, the form SendGrid's settings page shows and
  ``sendgrid.helpers.eventwebhook.EventWebhook`` accepts.
"""

from __future__ import annotations

import base64

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from twilio.request_validator import RequestValidator

SENDGRID_SIGNATURE = "X-Twilio-Email-Event-Webhook-Signature"
SENDGRID_TIMESTAMP = "X-Twilio-Email-Event-Webhook-Timestamp"


def twilio_headers(auth_token: str, url: str, params: dict[str, str]) -> dict[str, str]:
    return {"X-Twilio-Signature": RequestValidator(auth_token).compute_signature(url, params)}


class EventSigner:
    """A SendGrid-style signing key. A new one per sandbox unless ``private_pem`` is given
    (keep one across restarts so receivers configured with the public key keep verifying)."""

    def __init__(self, private_pem: bytes | None = None) -> None:
        if private_pem:
            key = serialization.load_pem_private_key(private_pem, password=None)
            if not isinstance(key, ec.EllipticCurvePrivateKey):
                raise ValueError("the SendGrid event key must be an EC (P-256) key")
            self._key = key
        else:
            self._key = ec.generate_private_key(ec.SECP256R1())
        der = self._key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        self.public_key = base64.b64encode(der).decode()

    def headers(self, body: bytes, timestamp: int) -> dict[str, str]:
        signature = self._key.sign(str(timestamp).encode() + body, ec.ECDSA(hashes.SHA256()))
        return {SENDGRID_SIGNATURE: base64.b64encode(signature).decode(), SENDGRID_TIMESTAMP: str(timestamp)}
