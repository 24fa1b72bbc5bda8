"""A minimal STUN/TURN message builder for the tests (RFC 8489/8656 wire format), written here."""
import base64
import imaplib
import re
import hashlib
import hmac
import socket
import struct
import time
import zlib

COOKIE = 0x2112A442
def attr(t, v):
    return struct.pack("!HH", t, len(v)) + v + b"\0" * ((4 - len(v) % 4) % 4)
def msg(mtype, tid, attrs, key=None, fingerprint=False):
    body = b"".join(attrs)
    if key is not None:
        hdr = struct.pack("!HHI", mtype, len(body) + 24, COOKIE) + tid
        mac = hmac.new(key, hdr + body, hashlib.sha1).digest()
        body += attr(0x0008, mac)
    if fingerprint:
        hdr = struct.pack("!HHI", mtype, len(body) + 8, COOKIE) + tid
        crc = (zlib.crc32(hdr + body) ^ 0x5354554E) & 0xffffffff
        body += attr(0x8028, struct.pack("!I", crc))
    return struct.pack("!HHI", mtype, len(body), COOKIE) + tid + body
def parse(data):
    mtype, length, cookie = struct.unpack("!HHI", data[:8])
    attrs = {}
    i = 20
    while i < 20 + length:
        t, l = struct.unpack("!HH", data[i:i+4]); attrs.setdefault(t, data[i+4:i+4+l]); i += 4 + l + (4 - l % 4) % 4
    return mtype, attrs
def xaddr(v, tid):
    fam = v[1]; port = struct.unpack("!H", v[2:4])[0] ^ (COOKIE >> 16)
    if fam == 1:
        ip = struct.unpack("!I", v[4:8])[0] ^ COOKIE; return socket.inet_ntoa(struct.pack("!I", ip)), port
    mask = struct.pack("!I", COOKIE) + tid
    return socket.inet_ntop(socket.AF_INET6, bytes(a ^ b for a, b in zip(v[4:20], mask))), port
def xpeer(host, port, tid):
    if ":" in host:
        raw = socket.inet_pton(socket.AF_INET6, host); mask = struct.pack("!I", COOKIE) + tid
        return struct.pack("!BBH", 0, 2, port ^ (COOKIE >> 16)) + bytes(a ^ b for a, b in zip(raw, mask))
    ip = struct.unpack("!I", socket.inet_aton(host))[0]
    return struct.pack("!BBHI", 0, 1, port ^ (COOKIE >> 16), ip ^ COOKIE)
def rest(secret, realm, ttl=3600, name=None):
    user = str(int(time.time()) + ttl) + (":" + name if name else "")
    pw = base64.b64encode(hmac.new(secret.encode(), user.encode(), hashlib.sha1).digest()).decode()
    return user, pw, hashlib.md5(f"{user}:{realm}:{pw}".encode()).digest()


def turn_from_imap(port, address, password):
    """`(host, port, username, password)` from /shared/vendor/deltachat/turn after an IMAP login on `port`, as
    Delta Chat reads it."""
    imap = imaplib.IMAP4("127.0.0.1", port)
    imap.login(address, password)
    tag = imap._new_tag().decode()
    imap.send(f'{tag} GETMETADATA "" (/shared/vendor/deltachat/turn)\r\n'.encode())
    reply = b""
    while not re.search(rf"^{tag} ".encode(), reply, re.M):
        reply += imap.readline()
    imap.logout()
    found = re.search(rb'/shared/vendor/deltachat/turn "([^:"]+):(\d+):(\d+):([^"]+)"', reply)
    assert found, reply
    host, port, username, password = (part.decode() for part in found.groups())
    return host, int(port), username, password
