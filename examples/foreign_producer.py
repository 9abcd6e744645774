"""Another team's producer: charge a card through Kafka with only the published public key.

It imports nothing of the payment service: the Python standard library, `cryptography` (for
HPKE) and `confluent-kafka`. It fetches the card public key (`GET /api/v1/keys/card`, with the
merchant's API key), seals the card number to it for a new transaction id, and produces a
`payment.process/v1` command (JSON Schema: src/payment_service/schemas/json/). It needs no
secret of the service's: it cannot read back what it sealed, and neither can anyone but the
processor. With `--payment-method-id` it charges a card on file and touches no card number.

    python examples/foreign_producer.py --api http://127.0.0.1:8000 --api-key psk_... \\
        --bootstrap 127.0.0.1:9092 --merchant merchant_demo --card 4242424242424242

Prints the transaction id; the outcome is on `payments.results` (keyed by it) and in
`GET /api/v1/payments/{id}`.
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import json
import os
import sys
import urllib.request
import uuid

from confluent_kafka import Producer
from cryptography.hazmat.primitives import hpke
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey

SUITE = hpke.Suite(hpke.KEM.X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.AES_256_GCM)
ALG = "HPKE-X25519-HKDF-SHA256-AES-256-GCM"


def fetch_public_key(api: str, api_key: str) -> dict[str, str]:
    request = urllib.request.Request(  # noqa: S310 (the operator gives the URL)
        f"{api.rstrip('/')}/api/v1/keys/card", headers={"Authorization": f"Bearer {api_key}"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        key: dict[str, str] = json.load(response)
    if key["alg"] != ALG:
        raise SystemExit(f"unsupported card key algorithm {key['alg']!r}")
    return key


def seal(key: dict[str, str], digits: str, purpose: str, subject: str) -> str:
    """The v2 envelope: HPKE base mode, info = prefix 0x00 purpose 0x00 subject."""
    public = X25519PublicKey.from_public_bytes(base64.b64decode(key["public_key"]))
    info = b"payment-service/card/v2\x00" + purpose.encode() + b"\x00" + subject.encode()
    ciphertext = SUITE.encrypt(digits.encode("ascii"), public, info=info)
    envelope = {"v": 2, "alg": ALG, "kid": key["kid"], "ct": base64.b64encode(ciphertext).decode()}
    # Optional hints: they let the processor say "sealed for another transaction" when it is.
    envelope.update(purpose=purpose, subject=subject)
    return json.dumps(envelope, separators=(",", ":"))


def command(args: argparse.Namespace, transaction_id: str) -> dict[str, object]:
    data: dict[str, object] = {
        "transaction_id": transaction_id,
        "merchant_id": args.merchant,
        "amount_minor": args.amount_minor,
        "currency": args.currency,
        "description": "foreign producer",
    }
    if args.payment_method_id:
        data["payment_method_id"] = args.payment_method_id
    else:
        key = fetch_public_key(args.api, args.api_key)
        data["card"] = {
            "number_envelope": seal(key, args.card, "card_number", transaction_id),
            "brand": "visa",
            "last4": args.card[-4:],
            "expiry_month": 12,
            "expiry_year": dt.datetime.now(dt.UTC).year + 2,
            "holder_name": "Foreign Producer",
        }
    return {
        "type": "payment.process/v1",
        "message_id": str(uuid.uuid4()),
        "occurred_at": dt.datetime.now(dt.UTC).isoformat(),
        "data": data,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--api", required=True, help="the payment API, for the public key")
    parser.add_argument("--api-key", required=True, help="the merchant's API key")
    parser.add_argument("--bootstrap", required=True, help="Kafka bootstrap servers")
    parser.add_argument("--topic", default="payments.requests")
    parser.add_argument("--merchant", required=True)
    parser.add_argument("--card", default="4242424242424242")
    parser.add_argument("--payment-method-id")
    parser.add_argument("--amount-minor", type=int, default=2500)
    parser.add_argument("--currency", default="USD")
    parser.add_argument("--sasl-username", help="your Kafka principal (SCRAM-SHA-512)")
    parser.add_argument("--sasl-password", help="its password (better: KAFKA_SASL_PASSWORD)")
    args = parser.parse_args()
    transaction_id = str(uuid.uuid4())
    message = json.dumps(command(args, transaction_id)).encode()
    config: dict[str, object] = {"bootstrap.servers": args.bootstrap, "enable.idempotence": True}
    if args.sasl_username:
        config.update(
            {
                "security.protocol": "SASL_PLAINTEXT",  # SASL_SSL in production
                "sasl.mechanisms": "SCRAM-SHA-512",
                "sasl.username": args.sasl_username,
                "sasl.password": args.sasl_password or os.environ.get("KAFKA_SASL_PASSWORD", ""),
            }
        )
    producer = Producer(config)
    delivered: list[object] = []
    producer.produce(
        args.topic,
        key=transaction_id.encode(),
        value=message,
        headers={"correlation-id": transaction_id},
        on_delivery=lambda err, _msg: delivered.append(err),
    )
    producer.flush(30)
    if delivered != [None]:
        print(f"not delivered: {delivered}", file=sys.stderr)
        return 1
    # Proof for the test that plays this team: nothing of the service was imported.
    assert not any(name.startswith("payment_service") for name in sys.modules)
    print(transaction_id)
    return 0


if __name__ == "__main__":
    sys.exit(main())
