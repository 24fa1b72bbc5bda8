"""Asks each service of an installed chatmail-swift whether it answers, from inside its network
namespace (`nsenter -t PID -n python3 probe.py ...`): prints one line per check and exits 1 when
one fails. Uses the integration tests' STUN builder and Shadowsocks client."""
import base64
import os
import socket
import ssl
import sys
import urllib.parse

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
import ssclient  # noqa: E402
import turn_stun  # noqa: E402


def login(reader, send, user, password):
    greeting = reader()
    assert greeting.startswith(b"* OK"), greeting
    send(b"a LOGIN " + user.encode() + b" " + password.encode() + b"\r\n")
    line = reader()
    while line.startswith(b"*"):
        line = reader()
    assert line.startswith(b"a OK"), line
    send(b"b LOGOUT\r\n")


def imap():
    """The greeting on 143 (a login there needs STARTTLS first)."""
    with socket.create_connection(("127.0.0.1", 143), timeout=10) as sock:
        greeting = sock.makefile("rb").readline()
        assert greeting.startswith(b"* OK"), greeting
    return "IMAP 143: greeting ok"


def imaps(user, password):
    """A first login over TLS on 993, which creates the account."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", 993), timeout=10) as raw:
        with context.wrap_socket(raw) as sock:
            login(sock.makefile("rb").readline, sock.sendall, user, password)
    return "IMAP 993: TLS login ok"


def turn():
    """A STUN Binding answered with our mapped address; an unauthenticated Allocate gets 401."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(5)
        sock.connect(("127.0.0.1", 3478))
        tid = os.urandom(12)
        sock.send(turn_stun.msg(0x0001, tid, []))
        mtype, attrs = turn_stun.parse(sock.recv(2048))
        assert mtype == 0x0101 and 0x0020 in attrs, (hex(mtype), attrs)
        mapped = turn_stun.xaddr(attrs[0x0020], tid)
        assert mapped == sock.getsockname(), (mapped, sock.getsockname())
        tid = os.urandom(12)
        sock.send(turn_stun.msg(0x0003, tid, [turn_stun.attr(0x0019, bytes([17, 0, 0, 0]))]))
        mtype, attrs = turn_stun.parse(sock.recv(2048))
        assert mtype == 0x0113 and attrs[0x0009][2:4] == bytes([4, 1]), (hex(mtype), attrs)
    return "TURN 3478/udp: binding ok, allocate without credentials 401"


def turn_tcp():
    """A STUN Binding over TCP (RFC 8489 framing: the message alone, no length prefix)."""
    with socket.create_connection(("127.0.0.1", 3478), timeout=5) as sock:
        tid = os.urandom(12)
        sock.sendall(turn_stun.msg(0x0001, tid, []))
        data = b""
        while len(data) < 20 or len(data) < 20 + int.from_bytes(data[2:4], "big"):
            chunk = sock.recv(2048)
            assert chunk, f"closed after {data!r}"
            data += chunk
        mtype, attrs = turn_stun.parse(data)
        assert mtype == 0x0101 and 0x0020 in attrs, (hex(mtype), attrs)
    return "TURN 3478/tcp: binding ok"


def http_get(send, receive):
    send(b"GET /generate_204 HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = receive()
        if not chunk:
            break
        data += chunk
    return data.split(b"\r\n", 1)[0]


def iroh():
    with socket.create_connection(("127.0.0.1", 3340), timeout=10) as sock:
        status = http_get(sock.sendall, lambda: sock.recv(4096))
    assert status.startswith(b"HTTP/1.1 204"), status
    return "iroh 3340: /generate_204 ok"


def shadowsocks(link):
    """Through the server to this host's IMAP on 993, with the key `chatmailctl shadowsocks url` printed:
    a TLS handshake and the IMAP greeting inside the Shadowsocks stream."""
    url = urllib.parse.urlsplit(link)
    userinfo = urllib.parse.unquote(url.netloc.rpartition("@")[0])
    if ":" in userinfo:
        method, _, password = userinfo.partition(":")
    else:
        decoded = base64.urlsafe_b64decode(userinfo + "=" * (-len(userinfo) % 4)).decode()
        method, _, password = decoded.partition(":")
    client = ssclient.Client(("127.0.0.1", 8388), method, password, ssclient.address("127.0.0.1", 993))
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = context.wrap_bio(incoming, outgoing)

    def pump(step):
        while True:
            try:
                result = step()
                if outgoing.pending:
                    client.send(outgoing.read())
                return result
            except ssl.SSLWantReadError:
                if outgoing.pending:
                    client.send(outgoing.read())
                data = client.recv()
                assert data, "the stream ended"
                incoming.write(data)

    try:
        pump(tls.do_handshake)
        greeting = pump(lambda: tls.read(200))
    finally:
        client.close()
    assert greeting.startswith(b"* OK"), greeting
    return f"Shadowsocks 8388 ({method}): relayed to IMAP 993, TLS greeting ok"


if __name__ == "__main__":
    checks = {"imap": imap, "imaps": imaps, "turn": turn, "turn_tcp": turn_tcp, "iroh": iroh,
              "shadowsocks": shadowsocks}
    failed = False
    for spec in sys.argv[1:]:
        name, _, argument = spec.partition("=")
        try:
            print(checks[name](*([a for a in argument.split(" ") if a] if argument else [])))
        except Exception as error:  # report every check, then fail
            failed = True
            print(f"{name}: FAILED: {error!r}")
    sys.exit(1 if failed else 0)
