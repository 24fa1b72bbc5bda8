"""A Shadowsocks TCP client for the tests, written from the specs (SIP004 AEAD and SIP022 2022 edition):
independent of the Swift code, on `cryptography` and `blake3`."""

import base64
import hashlib
import os
import socket
import struct
import time

import blake3
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

# method: (key length, AEAD class, is 2022)
METHODS = {
    "aes-128-gcm": (16, AESGCM, False),
    "aes-256-gcm": (32, AESGCM, False),
    "chacha20-ietf-poly1305": (32, ChaCha20Poly1305, False),
    "2022-blake3-aes-128-gcm": (16, AESGCM, True),
    "2022-blake3-aes-256-gcm": (32, AESGCM, True),
    "2022-blake3-chacha20-poly1305": (32, ChaCha20Poly1305, True),
}


def evp_bytes_to_key(password: bytes, length: int) -> bytes:
    key, block = b"", b""
    while len(key) < length:
        block = hashlib.md5(block + password).digest()
        key += block
    return key[:length]


def master_key(method: str, key_text: str) -> bytes:
    length, _, is2022 = METHODS[method]
    if is2022:
        key = base64.b64decode(key_text + "=" * (-len(key_text) % 4))
        assert len(key) == length
        return key
    return evp_bytes_to_key(key_text.encode(), length)


def subkey(method: str, key: bytes, salt: bytes) -> bytes:
    length, _, is2022 = METHODS[method]
    if is2022:
        return blake3.blake3(key + salt, derive_key_context="shadowsocks 2022 session subkey").digest(length)
    return HKDF(algorithm=hashes.SHA1(), length=length, salt=salt, info=b"ss-subkey").derive(key)


class Direction:
    """One direction's AEAD with its little-endian counter nonce."""

    def __init__(self, method: str, key: bytes, salt: bytes):
        self.aead = METHODS[method][1](subkey(method, key, salt))
        self.counter = 0

    def _nonce(self) -> bytes:
        nonce = self.counter.to_bytes(12, "little")
        self.counter += 1
        return nonce

    def seal(self, data: bytes) -> bytes:
        return self.aead.encrypt(self._nonce(), data, None)

    def open(self, data: bytes) -> bytes:
        return self.aead.decrypt(self._nonce(), data, None)


def address(host, port: int) -> bytes:
    """SOCKS5 address: ATYP 1/4 for bytes of length 4/16, else ATYP 3 with the name."""
    if isinstance(host, bytes) and len(host) == 4:
        return b"\x01" + host + struct.pack(">H", port)
    if isinstance(host, bytes) and len(host) == 16:
        return b"\x04" + host + struct.pack(">H", port)
    name = host.encode() if isinstance(host, str) else host
    return b"\x03" + bytes([len(name)]) + name + struct.pack(">H", port)


def chunks(direction: Direction, data: bytes, maximum: int) -> bytes:
    out = b""
    for start in range(0, len(data), maximum):
        piece = data[start : start + maximum]
        out += direction.seal(struct.pack(">H", len(piece))) + direction.seal(piece)
    return out


def request(method, key_text, target: bytes, payload=b"", salt=None, timestamp=None, padding=None):
    """The first flight and the request direction's cipher (to go on sending) and the salt."""
    length, _, is2022 = METHODS[method]
    key = master_key(method, key_text)
    salt = salt if salt is not None else os.urandom(length)
    direction = Direction(method, key, salt)
    if not is2022:
        return salt + chunks(direction, target + payload, 0x3FFF), direction, salt
    if padding is None:
        padding = 0 if payload else 16
    variable = target + struct.pack(">H", padding) + b"\x00" * padding + payload
    timestamp = int(time.time()) if timestamp is None else timestamp
    fixed = struct.pack(">BQH", 0, timestamp, len(variable))
    return salt + direction.seal(fixed) + direction.seal(variable), direction, salt


class Client:
    """A client connection to a Shadowsocks server asking for `target` (encoded with `address`)."""

    def __init__(self, server, method, key_text, target: bytes, payload=b"", timeout=10.0, source_address=None,
                 **request_options):
        self.method = method
        self.key = master_key(method, key_text)
        self.is2022 = METHODS[method][2]
        self.maximum = 0xFFFF if self.is2022 else 0x3FFF
        self.first_flight, self.sender, self.salt = request(method, key_text, target, payload, **request_options)
        self.sock = socket.create_connection(server, timeout=timeout, source_address=source_address)
        self.sock.sendall(self.first_flight)
        self.receiver = None
        self.buffer = b""
        self.pending_length = None

    def send(self, data: bytes):
        self.sock.sendall(chunks(self.sender, data, self.maximum))

    def shutdown_write(self):
        self.sock.shutdown(socket.SHUT_WR)

    def _fill(self, count: int) -> bool:
        while len(self.buffer) < count:
            data = self.sock.recv(1 << 20)
            if not data:
                return False
            self.buffer += data
        return True

    def _take(self, count: int) -> bytes:
        out, self.buffer = self.buffer[:count], self.buffer[count:]
        return out

    def recv(self) -> bytes:
        """The next decrypted chunk; b"" at the end of the stream."""
        salt_length = METHODS[self.method][0]
        if self.receiver is None:
            if not self._fill(salt_length):
                return b""
            self.receiver = Direction(self.method, self.key, self._take(salt_length))
            if self.is2022:
                header_length = 1 + 8 + salt_length + 2
                if not self._fill(header_length + 16):
                    raise EOFError("response header cut short")
                header = self.receiver.open(self._take(header_length + 16))
                kind, timestamp = struct.unpack(">BQ", header[:9])
                assert kind == 1, "response header type"
                assert abs(timestamp - time.time()) <= 30, "response timestamp"
                assert header[9 : 9 + salt_length] == self.salt, "response does not echo the request salt"
                self.pending_length = struct.unpack(">H", header[-2:])[0]
        if self.pending_length is None:
            if not self._fill(18):
                if self.buffer:
                    raise EOFError("length chunk cut short")
                return b""
            self.pending_length = struct.unpack(">H", self.receiver.open(self._take(18)))[0]
        if not self._fill(self.pending_length + 16):
            raise EOFError("payload chunk cut short")
        data = self.receiver.open(self._take(self.pending_length + 16))
        self.pending_length = None
        return data

    def recv_exactly(self, count: int) -> bytes:
        out = b""
        while len(out) < count:
            data = self.recv()
            if not data:
                break
            out += data
        return out

    def close(self):
        self.sock.close()
