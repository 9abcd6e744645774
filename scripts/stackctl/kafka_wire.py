"""A small hand-written Kafka protocol client: SASL/SCRAM-SHA-512 login, then a Metadata request.

The stack manager runs before any Kafka library is installed, so its health check speaks the
protocol itself, over one socket: `SaslHandshake` v1, `SaslAuthenticate` v1 carrying the three
SCRAM messages of RFC 5802 (client-first, client-final; the server's signature is verified), then
`Metadata` v4 (the oldest Kafka 4 still serves). Logging in as the stack's `admin` proves more
than an open port: the broker is serving, it knows the users bootstrapped at format time, and its
metadata names a controller.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import socket
import struct
from typing import Any

API_SASL_HANDSHAKE, API_SASL_AUTHENTICATE, API_METADATA = 17, 36, 3
MECHANISM = "SCRAM-SHA-512"
ERROR_NAMES = {33: "UNSUPPORTED_SASL_MECHANISM", 34: "ILLEGAL_SASL_STATE", 58: "SASL_AUTH_FAILED"}


class KafkaAuthError(OSError):
    """The broker refused the login (wrong password, unknown user, no SCRAM)."""


class Connection:
    """Length-prefixed requests and responses (request header v1, response header v0)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.correlation = 0

    def call(self, api_key: int, version: int, body: bytes) -> bytes:
        self.correlation += 1
        client_id = b"stack.py"
        header = struct.pack(">hhih", api_key, version, self.correlation, len(client_id))
        request = header + client_id + body
        self.sock.sendall(struct.pack(">i", len(request)) + request)
        size = struct.unpack(">i", recv_exact(self.sock, 4))[0]
        data = recv_exact(self.sock, size)
        if struct.unpack_from(">i", data)[0] != self.correlation:
            raise OSError("response out of order")
        return data[4:]


class Reader:
    """Reads the protocol's primitive types from a response body."""

    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def take(self, fmt: str) -> Any:
        value = struct.unpack_from(fmt, self.data, self.pos)[0]
        self.pos += struct.calcsize(fmt)
        return value

    def string(self) -> str | None:
        n = self.take(">h")
        if n < 0:
            return None
        value = self.data[self.pos : self.pos + n].decode()
        self.pos += n
        return value

    def bytes_(self) -> bytes:
        n = self.take(">i")
        value = self.data[self.pos : self.pos + max(n, 0)]
        self.pos += max(n, 0)
        return value


def recv_exact(s: socket.socket, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise OSError("connection closed")
        buf += chunk
    return buf


def kstring(value: str) -> bytes:
    raw = value.encode()
    return struct.pack(">h", len(raw)) + raw


def kafka_metadata(
    host: str, port: int, username: str, password: str, timeout: float = 2.0
) -> dict[str, Any]:
    """Log in with SCRAM-SHA-512, then ask for metadata: brokers, cluster id, controller."""
    with socket.create_connection((host, port), timeout=timeout) as sock:
        conn = Connection(sock)
        scram_login(conn, username, password)
        r = Reader(conn.call(API_METADATA, 4, struct.pack(">i", -1) + b"\x00"))
    r.take(">i")  # throttle time
    brokers = []
    for _ in range(r.take(">i")):
        node, bhost, bport, _rack = r.take(">i"), r.string(), r.take(">i"), r.string()
        brokers.append((node, bhost, bport))
    cluster_id = r.string()
    controller = r.take(">i")
    return {"brokers": brokers, "cluster_id": cluster_id, "controller": controller}


def scram_login(conn: Connection, username: str, password: str) -> None:
    """SaslHandshake, then the SCRAM-SHA-512 exchange in two SaslAuthenticate round trips."""
    r = Reader(conn.call(API_SASL_HANDSHAKE, 1, kstring(MECHANISM)))
    check(r.take(">h"), "SaslHandshake")
    user = username.replace("=", "=3D").replace(",", "=2C")
    client_first_bare = f"n={user},r={secrets.token_urlsafe(24)}"
    server_first = authenticate(conn, ("n,," + client_first_bare).encode()).decode()
    final, server_final_expected = scram_final(client_first_bare, server_first, password)
    server_final = authenticate(conn, final.encode()).decode()
    if not hmac.compare_digest(server_final, server_final_expected):
        raise KafkaAuthError("SCRAM: the server's signature is wrong")


def scram_final(client_first_bare: str, server_first: str, password: str) -> tuple[str, str]:
    """RFC 5802 with SHA-512: the client-final message, and the server-final one to expect."""
    fields = dict(item.split("=", 1) for item in server_first.split(","))
    if not fields["r"].startswith(client_first_bare.split("r=", 1)[1]):
        raise KafkaAuthError("SCRAM: the server's nonce does not extend ours")
    salted = hashlib.pbkdf2_hmac(
        "sha512", password.encode(), base64.b64decode(fields["s"]), int(fields["i"])
    )
    client_key = hmac.digest(salted, b"Client Key", "sha512")
    without_proof = f"c=biws,r={fields['r']}"
    auth_message = f"{client_first_bare},{server_first},{without_proof}".encode()
    signature = hmac.digest(hashlib.sha512(client_key).digest(), auth_message, "sha512")
    proof = bytes(a ^ b for a, b in zip(client_key, signature, strict=True))
    server_key = hmac.digest(salted, b"Server Key", "sha512")
    server_signature = base64.b64encode(hmac.digest(server_key, auth_message, "sha512"))
    return f"{without_proof},p={base64.b64encode(proof).decode()}", f"v={server_signature.decode()}"


def authenticate(conn: Connection, message: bytes) -> bytes:
    r = Reader(conn.call(API_SASL_AUTHENTICATE, 1, struct.pack(">i", len(message)) + message))
    error, error_message = r.take(">h"), r.string()
    check(error, "SaslAuthenticate", error_message)
    return r.bytes_()


def check(error: int, what: str, message: str | None = None) -> None:
    if error:
        name = ERROR_NAMES.get(error, f"error {error}")
        raise KafkaAuthError(f"{what}: {name}{': ' + message if message else ''}")
