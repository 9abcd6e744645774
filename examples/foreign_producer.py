"""Another team's producer: charge (or refund) through Kafka as a registered, signing producer.

It imports nothing of the payment service: the Python standard library, `cryptography` (HPKE for
the card, Ed25519 for the signature) and `confluent-kafka`. docs/kafka.md is the contract it
follows:

1. the card number is sealed to the published public key (`GET /api/v1/keys/card` with the
   merchant's API key, or the file `payment-service keys export-public` writes), bound to a new
   transaction id; or the payment names a card on file (`--payment-method-id`) and carries none;
2. the `payment.process/v1` (or, with `--refund-of`, `payment.refund/v1`) command is signed with
   the producer's Ed25519 key (headers `producer-id`, `signed-at`, `signature`);
3. it is produced with the producer's own Kafka login (SASL/SCRAM-SHA-512);
4. with `--wait`, the result is read from the producer's own results topic,
   `payments.results.<producer>` (consumer group `<producer>.example`).

    python examples/foreign_producer.py --bootstrap 127.0.0.1:9092 \\
        --producer-id team-a --signing-key-file team-a.key \\
        --sasl-username team-a  (password in KAFKA_SASL_PASSWORD) \\
        --api http://127.0.0.1:8000 --api-key psk_... --merchant merchant_demo --wait 30

Prints the transaction id, then (with `--wait`) the result's `data` as one JSON line.
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import json
import os
import struct
import sys
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, Producer
from cryptography.hazmat.primitives import hpke
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey

SUITE = hpke.Suite(hpke.KEM.X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.AES_256_GCM)
ALG = "HPKE-X25519-HKDF-SHA256-AES-256-GCM"
COMMAND_CONTEXT = b"payment-service/command/v1"


def fetch_public_key(args: argparse.Namespace) -> dict[str, str]:
    if args.card_key_file:
        key: dict[str, str] = json.loads(Path(args.card_key_file).read_text())
    else:
        request = urllib.request.Request(  # noqa: S310 (the operator gives the URL)
            f"{args.api.rstrip('/')}/api/v1/keys/card",
            headers={"Authorization": f"Bearer {args.api_key}"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            key = json.load(response)
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


def signature_headers(
    producer_id: str, private_key: Ed25519PrivateKey, key: bytes, value: bytes
) -> dict[str, str]:
    """Sign: context 0x00, then producer-id, signed-at, key, value, each behind its u32be length."""
    signed_at = str(time.time_ns() // 1_000_000)
    signed = COMMAND_CONTEXT + b"\x00"
    for field in (producer_id.encode(), signed_at.encode(), key, value):
        signed += struct.pack(">I", len(field)) + field
    signature = base64.b64encode(private_key.sign(signed)).decode()
    return {"producer-id": producer_id, "signed-at": signed_at, "signature": signature}


def _envelope(kind: str, data: dict[str, object]) -> dict[str, object]:
    return {
        "type": kind,
        "message_id": str(uuid.uuid4()),
        "occurred_at": dt.datetime.now(dt.UTC).isoformat(),
        "data": data,
    }


def command(args: argparse.Namespace, transaction_id: str) -> dict[str, object]:
    if args.refund_of:
        refund: dict[str, object] = {
            "refund_id": f"rf_{uuid.uuid4().hex}",
            "transaction_id": transaction_id,
            "merchant_id": args.merchant,
        }
        return _envelope("payment.refund/v1", refund)
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
        key = fetch_public_key(args)
        data["card"] = {
            "number_envelope": seal(key, args.card, "card_number", transaction_id),
            "brand": "visa",
            "last4": args.card[-4:],
            "expiry_month": 12,
            "expiry_year": dt.datetime.now(dt.UTC).year + 2,
            "holder_name": "Foreign Producer",
        }
    return _envelope("payment.process/v1", data)


def kafka_config(args: argparse.Namespace) -> dict[str, Any]:
    config: dict[str, Any] = {"bootstrap.servers": args.bootstrap}
    if args.sasl_username:
        config.update(
            {
                "security.protocol": args.security_protocol,
                "sasl.mechanisms": "SCRAM-SHA-512",
                "sasl.username": args.sasl_username,
                "sasl.password": os.environ.get("KAFKA_SASL_PASSWORD", ""),
            }
        )
    return config


def wait_result(
    args: argparse.Namespace, transaction_id: str, refund_id: object
) -> dict[str, Any] | None:
    """The result for our command on our own results topic, or None at the deadline."""
    topic = args.results_topic or f"payments.results.{args.producer_id}"
    consumer = Consumer(
        {
            **kafka_config(args),
            "group.id": f"{args.producer_id}.example",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([topic])
    deadline = time.monotonic() + args.wait
    try:
        while time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is None or message.error() is not None or message.value() is None:
                continue
            if message.key() != transaction_id.encode():
                continue
            result: dict[str, Any] = json.loads(message.value())["data"]
            if result.get("refund_id") == refund_id:
                return result
    finally:
        consumer.close()
    return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", required=True, help="Kafka bootstrap servers")
    parser.add_argument("--topic", default="payments.requests")
    parser.add_argument("--producer-id", required=True, help="your registered producer name")
    parser.add_argument("--signing-key-file", help="your Ed25519 private key (base64 line)")
    parser.add_argument("--unsigned", action="store_true", help="send without a signature")
    parser.add_argument("--api", help="the payment API, for the card public key")
    parser.add_argument("--api-key", help="the merchant's API key (for the public key)")
    parser.add_argument("--card-key-file", help="the card public key (`keys export-public`)")
    parser.add_argument("--merchant", required=True)
    parser.add_argument("--card", default="4242424242424242")
    parser.add_argument("--payment-method-id")
    parser.add_argument("--refund-of", help="refund this transaction (all that remains)")
    parser.add_argument("--amount-minor", type=int, default=2500)
    parser.add_argument("--currency", default="USD")
    parser.add_argument("--sasl-username", help="your Kafka principal; password in the env")
    parser.add_argument("--security-protocol", default="SASL_PLAINTEXT", help="SASL_SSL in prod")
    parser.add_argument("--results-topic", help="default: payments.results.<producer-id>")
    parser.add_argument("--wait", type=float, default=0, help="seconds to wait for the result")
    args = parser.parse_args()
    transaction_id = args.refund_of or str(uuid.uuid4())
    message = command(args, transaction_id)
    value = json.dumps(message).encode()
    headers = {"correlation-id": transaction_id}
    if not args.unsigned:
        text = os.environ.get("SIGNING_PRIVATE_KEY") or Path(args.signing_key_file).read_text()
        private_key = Ed25519PrivateKey.from_private_bytes(base64.b64decode(text.strip()))
        headers |= signature_headers(args.producer_id, private_key, transaction_id.encode(), value)
    producer = Producer({**kafka_config(args), "enable.idempotence": True})
    delivered: list[object] = []
    producer.produce(
        args.topic,
        key=transaction_id.encode(),
        value=value,
        headers=headers,
        on_delivery=lambda err, _msg: delivered.append(err),
    )
    producer.flush(30)
    if delivered != [None]:
        print(f"not delivered: {delivered}", file=sys.stderr)
        return 1
    # Proof for the test that plays this team: nothing of the service was imported.
    assert not any(name.startswith("payment_service") for name in sys.modules)
    print(transaction_id, flush=True)
    if args.wait:
        data = message["data"]
        refund_id = data.get("refund_id") if isinstance(data, dict) else None
        result = wait_result(args, transaction_id, refund_id)
        if result is None:
            print("no result before the deadline", file=sys.stderr)
            return 2
        print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
