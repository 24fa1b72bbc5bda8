"""Minimal hand-written relay clients for the bad-case tests: family L over `iroh derp http`, and WebSocket
(family W with a sub-protocol, family L without). Written from the notes, independent of the Swift code."""

import base64
import os
import socket
import ssl
import struct
import time

import blake3
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

MAGIC = "RELAY🔑".encode()
CHALLENGE_CONTEXT = "iroh-relay handshake v1 challenge signature"


class Key:
    def __init__(self, seed=None):
        self.private = Ed25519PrivateKey.from_private_bytes(seed or os.urandom(32))
        self.public = self.private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)

    def sign(self, message):
        return self.private.sign(message)


def challenge_message(challenge):
    return blake3.blake3(challenge, derive_key_context=CHALLENGE_CONTEXT).digest()


class Closed(Exception):
    pass


class Connection:
    """An upgraded relay connection; over TLS when `tls` is an ssl.SSLContext."""

    def __init__(self, port, request, tls=None):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        if tls:
            self.sock = tls.wrap_socket(self.sock, server_hostname="localhost")
        self.sock.sendall(request.encode())
        self.buffer = b""
        while b"\r\n\r\n" not in self.buffer:
            self._fill(5)
        head, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
        lines = head.decode().split("\r\n")
        self.status = int(lines[0].split()[1])
        self.headers = {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:])}

    def _fill(self, timeout):
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(65536)
        except (ConnectionResetError, ssl.SSLEOFError):
            data = b""
        if not data:
            raise Closed()
        self.buffer += data

    def _take(self, count, timeout):
        deadline = time.monotonic() + timeout
        while len(self.buffer) < count:
            self._fill(max(0.01, deadline - time.monotonic()))
        data, self.buffer = self.buffer[:count], self.buffer[count:]
        return data

    def closed_within(self, timeout):
        """True when the server closes the connection within `timeout` seconds (data before that is discarded)."""
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                self._fill(max(0.01, deadline - time.monotonic()))
                self.buffer = b""
        except Closed:
            return True
        except (socket.timeout, TimeoutError):
            return False
        return False

    def close(self):
        self.sock.close()


class LegacyStream(Connection):
    """Family L over `Upgrade: iroh derp http` (what iroh 0.35 sends: no Connection header)."""

    def __init__(self, port, key=None, tls=None):
        super().__init__(port, f"GET /relay HTTP/1.1\r\nupgrade: iroh derp http\r\nhost: 127.0.0.1:{port}\r\n\r\n",
                         tls)
        self.key = key or Key()

    def send(self, frame_type, payload=b""):
        self.sock.sendall(struct.pack(">BI", frame_type, len(payload)) + payload)

    def recv(self, timeout=5):
        frame_type, length = struct.unpack(">BI", self._take(5, timeout))
        return frame_type, self._take(length, timeout)

    def client_info(self, message=b"\x03", signature=None):
        signature = signature or self.key.sign(message)
        self.send(2, MAGIC + self.key.public + signature + message)


class WebSocket(Connection):
    """A WebSocket client: family W when `protocols` is given, family L over messages otherwise."""

    def __init__(self, port, protocols="iroh-relay-v2, iroh-relay-v1", key=None, version="13", tls=None):
        nonce = base64.b64encode(os.urandom(16)).decode()
        extra = f"Sec-WebSocket-Protocol: {protocols}\r\n" if protocols else ""
        super().__init__(port, (
            f"GET /relay HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {nonce}\r\nSec-WebSocket-Version: {version}\r\n{extra}\r\n"), tls)
        self.key = key or Key()

    def send(self, payload, opcode=2, fin=True):
        mask = os.urandom(4)
        header = bytes([(0x80 if fin else 0) | opcode])
        if len(payload) < 126:
            header += bytes([0x80 | len(payload)])
        elif len(payload) < 65536:
            header += bytes([0x80 | 126]) + struct.pack(">H", len(payload))
        else:
            header += bytes([0x80 | 127]) + struct.pack(">Q", len(payload))
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.sock.sendall(header + mask + masked)

    def recv_frame(self, timeout=5):
        first, second = self._take(2, timeout)
        length = second & 0x7F
        if length == 126:
            length = struct.unpack(">H", self._take(2, timeout))[0]
        elif length == 127:
            length = struct.unpack(">Q", self._take(8, timeout))[0]
        assert not second & 0x80, "server frames must not be masked"
        return first & 0x0F, self._take(length, timeout)

    def recv(self, timeout=5):
        """The next binary message."""
        while True:
            opcode, payload = self.recv_frame(timeout)
            if opcode == 2:
                return payload
            if opcode == 8:
                raise Closed()

    def authenticate(self, key=None, tamper=False):
        key = key or self.key
        challenge = self.recv()
        assert challenge[0] == 0 and len(challenge) == 17, challenge
        signature = bytearray(key.sign(challenge_message(challenge[1:])))
        if tamper:
            signature[0] ^= 1
        self.send(bytes([1]) + key.public + bytes([64]) + bytes(signature))
        return self.recv()
