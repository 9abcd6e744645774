"""CPU cost of verifying one signed command (docs/kafka.md, "Cost"): `python -m bench.signing`.

Measures process CPU time (not wall time) of what the processor does per command before anything
else: build the canonical bytes of key, value and headers, decode the signature, verify Ed25519.
Prints the mean over `--rounds` for values of 512 B, 2 KiB and 8 KiB.
"""

from __future__ import annotations

import argparse
import time

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from payment_service.kafka import signing


def measure(size: int, rounds: int) -> float:
    """Mean CPU milliseconds per verification of a command with a `size`-byte value."""
    key = Ed25519PrivateKey.generate()
    value = b"x" * size
    headers = signing.Signer("team-a", key).command_headers(b"txn_1", value)
    public = key.public_key()
    started = time.process_time()
    for _ in range(rounds):
        signature = signing.decode_signature(headers["signature"])
        assert signature is not None
        signed = signing.command_bytes("team-a", headers["signed-at"], b"txn_1", value)
        if not signing.verify(public, signature, signed):
            raise SystemExit("a valid signature did not verify")
    return (time.process_time() - started) * 1000 / rounds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5000)
    args = parser.parse_args()
    for size in (512, 2048, 8192):
        print(f"verify, {size:>5} B value: {measure(size, args.rounds):.4f} ms CPU per command")


if __name__ == "__main__":
    main()
