#!/usr/bin/env python3
"""Open a sealed Switchboard message and verify its signature (docs/e2e.md).

    python open_sealed.py message.json keys.json sender_keys.json

message.json      one message as the hub hands it out (`GET /v1/inbox` → messages[i])
keys.json         your private keys, as `switchboard keys init` keeps them
sender_keys.json  `GET /v1/keys?principal=<message.from>&include_revoked=true`

Prints {"parts": [...], "verified": true|false}; a plain message's parts as they are. Needs `pyhpke` and `cryptography`.
"""

import base64
import json
import sys

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from pyhpke import AEADId, CipherSuite, KDFId, KEMId

SUITE = "hpke-base-x25519-sha256-chacha20poly1305"
SEALED_INFO = b"switchboard.sealed.v1"
SEALED_AAD = b"switchboard.sealed.v1"
SIGNED_PREFIX = b"switchboard.signed.v1\n"


def canonical(value) -> bytes:
    """Canonical JSON: sorted keys, no whitespace, UTF-8 (docs/e2e.md)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def signed_bytes(m: dict) -> bytes:
    return SIGNED_PREFIX + canonical(
        {
            "conversation_id": m.get("conversation_id"),
            "from": m["from"],
            "idempotency_key": m["idempotency_key"],
            "in_reply_to": m.get("in_reply_to"),
            "parts": m["parts"],
            "to": m["to"],
        }
    )


def verify(m: dict, sender_keys: list) -> bool:
    sig = m.get("signature")
    if not sig or not m.get("idempotency_key"):
        return False
    for k in sender_keys:
        revoked = k.get("revoked_at")
        if (
            k["key_id"] == sig["key_id"]
            and k["principal"] == m["from"]
            and k["kind"] == "ed25519"
            and (revoked is None or revoked > m["created_at"])
        ):
            key = Ed25519PublicKey.from_public_bytes(base64.b64decode(k["public_key"]))
            try:
                key.verify(base64.b64decode(sig["sig"]), signed_bytes(m))
                return True
            except Exception:
                return False
    return False


def open_parts(m: dict, keys: dict) -> list:
    sealed = next((p["sealed"] for p in m["parts"] if p["kind"] == "sealed"), None)
    if sealed is None:  # a plain (perhaps signed) message
        return m["parts"]
    assert sealed["suite"] == SUITE, sealed["suite"]
    entry = next(r for r in sealed["recipients"] if r["key_id"] == keys["encryption_key_id"])
    ciphertext = base64.b64decode(sealed["ciphertext"])
    suite = CipherSuite.new(KEMId.DHKEM_X25519_HKDF_SHA256, KDFId.HKDF_SHA256, AEADId.CHACHA20_POLY1305)
    private = suite.kem.deserialize_private_key(base64.b64decode(keys["encryption_key"]))
    ctx = suite.create_recipient_context(base64.b64decode(entry["enc"]), private, info=SEALED_INFO)
    content_key = ctx.open(base64.b64decode(entry["wrapped_key"]), aad=ciphertext)
    plaintext = ChaCha20Poly1305(content_key).decrypt(b"\0" * 12, ciphertext, SEALED_AAD)
    return json.loads(plaintext)


def main() -> None:
    message, keys, sender_keys = (json.load(open(path)) for path in sys.argv[1:4])
    sender_keys = sender_keys.get("keys", sender_keys)
    print(json.dumps({"parts": open_parts(message, keys), "verified": verify(message, sender_keys)}))


if __name__ == "__main__":
    main()
