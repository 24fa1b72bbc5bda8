"""chatmail-shadowsocks against real clients: ss-local (shadowsocks-libev) and pproxy for the SIP004 methods,
the spec-based client in ssclient.py for SIP022; destination policy, replays and probing behaviour."""

import base64
import hashlib
import os
import shutil
import socket
import struct
import subprocess
import sys
import threading
import time
import urllib.parse

import pytest

import ssclient
from conftest import bin_dir, terminate, wait_until

HANDSHAKE_TIMEOUT = 3.0
NAME = "chat.example.org"
ADDRESS = "192.0.2.1"  # this test server's "public" address (TEST-NET-1, never connected to)
AEAD_METHODS = ["aes-128-gcm", "aes-256-gcm", "chacha20-ietf-poly1305"]
METHODS_2022 = ["2022-blake3-aes-128-gcm", "2022-blake3-aes-256-gcm", "2022-blake3-chacha20-poly1305"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LoopbackService:
    """A TCP service on an ephemeral loopback port; `serve(conn)` runs in a thread per connection."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self.serve, args=(conn,), daemon=True).start()

    def close(self):
        self.sock.close()


class EchoService(LoopbackService):
    """Echoes everything and half-closes after the client does."""

    @staticmethod
    def serve(conn):
        with conn:
            try:
                while data := conn.recv(1 << 18):
                    conn.sendall(data)
                conn.shutdown(socket.SHUT_WR)
            except OSError:
                pass


class ChecksumService(LoopbackService):
    """One-way transfers: "U" + u64 length, then that many bytes, answered with their
    SHA-256; "D" + u64 length is answered with that many random bytes followed by their SHA-256.
    For the half-close tests, each ending with `finished` set: "F" + u64 length waits for the client's
    FIN, then answers as "D" does and closes; "H" + u64 0 sends its FIN at once, then reads slowly until
    the client's FIN and keeps the SHA-256 of what it read in `uploaded`."""

    def __init__(self):
        super().__init__()
        self.finished = threading.Event()
        self.uploaded = None

    def serve(self, conn):
        command = None
        with conn:
            try:
                header = b""
                while len(header) < 9:
                    header += conn.recv(9 - len(header))
                command, length = header[:1], struct.unpack(">Q", header[1:])[0]
                digest = hashlib.sha256()
                if command == b"H":
                    conn.shutdown(socket.SHUT_WR)
                    while data := conn.recv(1 << 14):
                        digest.update(data)
                        time.sleep(0.002)  # slower than the client sends: the server's queue stays full
                    self.uploaded = digest.digest()
                elif command == b"U":
                    while length:
                        data = conn.recv(min(length, 1 << 20))
                        digest.update(data)
                        length -= len(data)
                    conn.sendall(digest.digest())
                else:
                    while command == b"F" and conn.recv(1 << 16):
                        pass
                    while length:
                        data = os.urandom(min(length, 1 << 18))
                        digest.update(data)
                        conn.sendall(data)
                        length -= len(data)
                    conn.sendall(digest.digest())
            except OSError:
                pass
        if command in (b"F", b"H"):
            self.finished.set()


def upload(sock, size):
    digest = hashlib.sha256()
    sock.sendall(b"U" + struct.pack(">Q", size))
    remaining = size
    while remaining:
        data = os.urandom(min(remaining, 1 << 18))
        digest.update(data)
        sock.sendall(data)
        remaining -= len(data)
    return digest.digest(), read_exactly(sock, 32)


def download(sock, size):
    digest = hashlib.sha256()
    sock.sendall(b"D" + struct.pack(">Q", size))
    remaining = size
    while remaining:
        data = sock.recv(min(remaining, 1 << 20))
        assert data, f"cut short with {remaining} bytes to go"
        digest.update(data)
        remaining -= len(data)
    return digest.digest(), read_exactly(sock, 32)


def read_exactly(sock, count):
    out = b""
    while len(out) < count:
        data = sock.recv(count - len(out))
        assert data, "cut short"
        out += data
    return out


@pytest.fixture(scope="module")
def checksum():
    service = ChecksumService()
    yield service
    service.close()


@pytest.fixture(scope="module")
def echo():
    service = EchoService()
    yield service
    service.close()


def section_lines(method, key, echo_port, checksum_port):
    """The `[shadowsocks]` settings of a test server but its listen address."""
    return "\n".join([f'method = "{method}"', f'key = "{key}"' if key else "", f'names = ["{NAME}"]',
                      f'addresses = ["{ADDRESS}"]', "allowed_ports = [993, 465]",
                      f'upstreams = ["993=127.0.0.1:{echo_port}", "465=127.0.0.1:{checksum_port}"]',
                      f"handshake_timeout = {HANDSHAKE_TIMEOUT}"])


class Server:
    def __init__(self, tmp, method, key, echo_port, checksum_port, extra="", prefix=()):
        """`prefix` goes before the command (such as `read_only_prefix`)."""
        self.port = free_port()
        self.method = method
        self.key = key
        self.config = tmp / f"supervisor-{method}.conf"
        self.config.write_text(
            f"""
[tls]
names = ["{NAME}"]
[supervisor]
state_dir = "{tmp}/state"
runtime_dir = "{tmp}"
[imap]
enabled = false
[turn]
enabled = false
[iroh]
enabled = false
[shadowsocks]
listen = "127.0.0.1:{self.port}"
{section_lines(method, key, echo_port, checksum_port)}
{extra}
"""
        )
        self.log = open(tmp / f"ss-{method}.log", "w+")
        self.process = subprocess.Popen(
            [*prefix, str(bin_dir() / "chatmail-shadowsocks"), "--config", str(self.config)],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        wait_until(self._listening, timeout=15, what="chatmail-shadowsocks to listen")

    def _listening(self):
        assert self.process.poll() is None, f"exited: {self.output()}"
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
            return True
        except OSError:
            return False

    @property
    def address(self):
        return ("127.0.0.1", self.port)

    def output(self):
        self.log.seek(0)
        return self.log.read()

    def client(self, target=(NAME, 993), payload=b"", **options):
        host, port = target
        return ssclient.Client(
            self.address, self.method, self.key, ssclient.address(host, port), payload, **options
        )

    def stop(self):
        terminate(self.process)


def key_for(method):
    length, _, is2022 = ssclient.METHODS[method]
    return base64.b64encode(os.urandom(length)).decode() if is2022 else "test-" + os.urandom(8).hex()


@pytest.fixture(scope="module")
def servers(tmp_path_factory, echo, checksum):
    """One server per method, started on first use."""
    tmp = tmp_path_factory.mktemp("ss")
    started = {}

    def get(method):
        if method not in started:
            started[method] = Server(tmp, method, key_for(method), echo.port, checksum.port)
        return started[method]

    yield get
    for server in started.values():
        server.stop()


def socks_connect(port, host, target_port, timeout=20):
    """A SOCKS5 CONNECT through a local proxy (ss-local, pproxy), by name."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    sock.sendall(b"\x05\x01\x00")
    assert sock.recv(2) == b"\x05\x00"
    name = host.encode()
    sock.sendall(b"\x05\x01\x00\x03" + bytes([len(name)]) + name + struct.pack(">H", target_port))

    def read(count):
        out = b""
        while len(out) < count:
            data = sock.recv(count - len(out))
            assert data, "SOCKS reply cut short"
            out += data
        return out

    reply = read(4)
    assert reply[1] == 0, f"SOCKS connect failed: {reply!r}"
    # The bound address: IPv4, IPv6 or (pproxy) a name.
    read({1: 4 + 2, 4: 16 + 2}.get(reply[3]) or read(1)[0] + 2)
    return sock


def echo_transfer(sock, size, piece=1 << 18, half_close=True):
    """Sends `size` random bytes and reads the echo concurrently; returns (sent digest, received digest).
    With `half_close`, the end is a FIN each way; without (ss-local closes both ways on the first FIN), the
    reader stops at `size` bytes."""
    sent = hashlib.sha256()
    received = hashlib.sha256()
    total = [0]

    def writer():
        remaining = size
        while remaining:
            data = os.urandom(min(piece, remaining))
            sent.update(data)
            sock.sendall(data)
            remaining -= len(data)
        if half_close:
            sock.shutdown(socket.SHUT_WR)

    thread = threading.Thread(target=writer)
    thread.start()
    while (half_close or total[0] < size) and (data := sock.recv(1 << 20)):
        received.update(data)
        total[0] += len(data)
    thread.join()
    assert total[0] == size, f"echoed {total[0]} of {size} bytes"
    return sent.hexdigest(), received.hexdigest()


def wait_port(port, process, timeout=10):
    def ready():
        assert process.poll() is None, "local proxy exited"
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return True
        except OSError:
            return False

    wait_until(ready, timeout=timeout, what=f"local proxy on {port}")


def run_local(command, port):
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_port(port, process)
    except BaseException:
        process.kill()
        raise
    return process


def ss_local(server_port, key, method):
    """ss-local (shadowsocks-libev) as a SOCKS5 front for a server; (process, SOCKS port)."""
    if not shutil.which("ss-local"):
        pytest.skip("ss-local (Debian shadowsocks-libev) is not installed")
    port = free_port()
    command = ["ss-local", "-s", "127.0.0.1", "-p", str(server_port), "-l", str(port), "-b", "127.0.0.1",
               "-k", key, "-m", method, "-t", "60"]
    return run_local(command, port), port


def checked_transfer(socks_port, target_port, transfer, size):
    """`transfer` (upload, download or a one-way-less echo) through a SOCKS proxy to NAME:target_port."""
    sock = socks_connect(socks_port, NAME, target_port)
    sent, received = transfer(sock, size)
    sock.close()
    assert sent == received, transfer.__name__


def echo_both_ways(sock, size):
    return echo_transfer(sock, size, half_close=False)


def stop(process):
    process.terminate()
    try:
        process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def closed_without_a_byte(sock, started):
    """Waits for the server's close, which must be a FIN (not RST) with no byte before it; its time after
    `started`."""
    sock.settimeout(HANDSHAKE_TIMEOUT + 3)
    try:
        data = sock.recv(4096)
    except ConnectionResetError:
        pytest.fail("connection reset instead of closed")
    assert data == b"", f"the server answered {data!r}"
    return time.monotonic() - started


def assert_silent_until_deadline(sock, started):
    """No byte before the handshake deadline, then a clean close shortly after it."""
    elapsed = closed_without_a_byte(sock, started)
    assert elapsed >= HANDSHAKE_TIMEOUT - 0.3, f"closed after {elapsed:.2f}s, before the deadline"
    assert elapsed <= HANDSHAKE_TIMEOUT + 2, f"still open {elapsed:.2f}s after accept"


def assert_closed_at_once(sock, started):
    """No byte, and a clean close well before the handshake deadline."""
    elapsed = closed_without_a_byte(sock, started)
    assert elapsed < HANDSHAKE_TIMEOUT / 2, f"closed only after {elapsed:.2f}s"


# ---------------------------------------------------------------------------------------------------------------


def test_python_client_matches_the_notes_vectors():
    target = bytes.fromhex("03106d61696c2e6578616d706c652e6f726703e1")
    assert ssclient.address("mail.example.org", 993) == target
    flight, _, _ = ssclient.request("aes-256-gcm", "chatmail-test", target, salt=bytes(range(32)))
    assert flight[32:].hex() == (
        "a87eeae15261237060c364d5830b6a6f4f94"
        "b7fad41afd612bc713acab6fb964ecb117f76445e827ea3de7892da6ad909d432196a972"
    )
    flight, _, _ = ssclient.request("aes-128-gcm", "chatmail-test", target, salt=bytes(range(16)))
    assert flight[16:34].hex() == "ed0fdd8c2ba0b167991da458a92e6f615611"
    psk128 = base64.b64encode(bytes(range(16))).decode()
    assert ssclient.subkey("2022-blake3-aes-128-gcm", bytes(range(16)), bytes(range(0x40, 0x50))).hex() == (
        "80e542bc94fbfe0078a6469c1e09a7cf"
    )
    assert psk128 == "AAECAwQFBgcICQoLDA0ODw=="
    psk = base64.b64encode(bytes(range(32))).decode()
    salt = bytes(range(0x40, 0x60))
    flight, _, _ = ssclient.request(
        "2022-blake3-aes-256-gcm", psk, target, bytes.fromhex("160301"), salt=salt, timestamp=1700000000
    )
    assert flight[32:].hex() == (
        "6974e6d351c385cfdec57dc55326bf673b2af4625ca8b18f741216"
        "ed2f919d4381ab5b23b5a9aa494829cac0915b452f8ae144f63b18fd626a951c108e897f7bbcaebfc0"
    )
    flight, _, _ = ssclient.request(
        "2022-blake3-chacha20-poly1305", psk, target, bytes.fromhex("160301"), salt=salt, timestamp=1700000000
    )
    assert flight[32:59].hex() == "d9b69a4c76f623b46df88300d51967eed5c88230d8f1a75dc6167d"


@pytest.mark.parametrize("method", AEAD_METHODS + METHODS_2022)
def test_python_client_round_trip(servers, method):
    server = servers(method)
    client = server.client(payload=b"hello")
    assert client.recv_exactly(5) == b"hello"
    data = os.urandom(300_000)
    client.send(data)
    assert client.recv_exactly(len(data)) == data
    client.shutdown_write()
    assert client.recv() == b""  # the service's FIN comes through
    client.close()


@pytest.mark.parametrize("method", ["aes-256-gcm", "chacha20-ietf-poly1305", "aes-128-gcm"])
def test_ss_local_64_mib_with_checksum(servers, method):
    server = servers(method)
    local, port = ss_local(server.port, server.key, method)
    try:
        checked_transfer(port, 993, echo_both_ways, 64 << 20)
    finally:
        stop(local)


@pytest.mark.parametrize("method", ["chacha20-ietf-poly1305", "aes-256-gcm"])
def test_pproxy_8_mib_each_way_with_checksum(servers, method):
    """8 MiB each way, and 8 MiB echoed: pproxy 2.7.9 corrupts its own stream after some 20-30 MB on one
    connection (ss-server 3.3.5 then reports an authentication error too), so the 64 MiB runs are ss-local's."""
    pytest.importorskip("pproxy")
    server = servers(method)
    port = free_port()
    remote = f"ss://{method}:{server.key}@127.0.0.1:{server.port}"
    local = run_local([sys.executable, "-m", "pproxy", "-l", f"socks5://127.0.0.1:{port}", "-r", remote], port)
    try:
        checked_transfer(port, 465, upload, 8 << 20)
        checked_transfer(port, 465, download, 8 << 20)
        checked_transfer(port, 993, echo_both_ways, 8 << 20)
    finally:
        stop(local)


@pytest.mark.parametrize("method", ["aes-256-gcm", "2022-blake3-chacha20-poly1305"])
def test_half_close_passes_the_fin_after_all_data(servers, method):
    """The client sends 16 MiB and its FIN at once; every echoed byte arrives before the service's FIN."""
    client = servers(method).client(payload=b"!")
    data = os.urandom(16 << 20)

    def writer():
        for start in range(0, len(data), 1 << 20):
            client.send(data[start : start + (1 << 20)])
        client.shutdown_write()

    thread = threading.Thread(target=writer)
    thread.start()
    received = bytearray()
    while chunk := client.recv():
        received += chunk
    thread.join()
    assert hashlib.sha256(received).digest() == hashlib.sha256(b"!" + data).digest()
    client.close()


def test_the_service_closing_after_the_clients_fin_loses_no_data(servers, checksum):
    """The client sends its FIN first, then reads slowly while the service answers, shuts down and closes.
    Our upstream socket sees that EOF with its own output already shut down, which NIO reports as a full
    close without an input-closed event, while the server still holds data the client has not taken: every
    byte the service sent must reach the client, then the FIN."""
    size = 4 << 20
    checksum.finished.clear()
    client = servers("aes-256-gcm").client(target=(NAME, 465), payload=b"F" + struct.pack(">Q", size))
    client.shutdown_write()
    # Reading slower than the service sends keeps the server's queue to the client full until the end.
    while data := client.sock.recv(1 << 14):
        client.buffer += data
        time.sleep(0.002)
    assert checksum.finished.is_set()
    received = bytearray()
    while chunk := client.recv():
        received += chunk
    assert len(received) == size + 32
    assert hashlib.sha256(received[:size]).digest() == bytes(received[size:])
    client.close()


def test_the_clients_last_data_reaches_a_service_that_finished_first(servers, checksum):
    """The mirror case: the service sends its FIN first and the client's FIN is passed on to it, so our
    client socket sees EOF with its output already shut down. All the client sent before must reach the
    service."""
    checksum.finished.clear()
    client = servers("aes-256-gcm").client(target=(NAME, 465), payload=b"H" + struct.pack(">Q", 0))
    assert client.recv() == b""
    data = os.urandom(4 << 20)
    client.send(data)
    client.shutdown_write()
    assert checksum.finished.wait(20), "the service did not see the client's FIN"
    assert checksum.uploaded == hashlib.sha256(data).digest()
    client.close()


ALLOWED = [(NAME, 993), (NAME.upper() + ".", 993), (ADDRESS, 993), (socket.inet_aton(ADDRESS), 993),
           (socket.inet_pton(socket.AF_INET6, "::ffff:" + ADDRESS), 993)]
REFUSED = [
    (NAME, 25), (NAME, 10025), (NAME, 443), (b"\x7f\x00\x00\x01", 25), (b"\x7f\x00\x00\x01", 993),
    ("127.0.0.1", 993), ("localhost", 993), ("LOCALHOST.", 993), ("example.org", 993), ("0.0.0.0", 993),
    (socket.inet_pton(socket.AF_INET6, "::ffff:127.0.0.1"), 993), (socket.inet_pton(socket.AF_INET6, "::1"), 993),
    (socket.inet_pton(socket.AF_INET6, "::ffff:" + ADDRESS), 25), ("2130706433", 993),
]


@pytest.mark.parametrize("target", ALLOWED, ids=repr)
def test_targets_naming_this_server_are_allowed(servers, target):
    client = servers("aes-256-gcm").client(target=target, payload=b"ping")
    assert client.recv_exactly(4) == b"ping"
    client.close()


@pytest.mark.parametrize("method", ["aes-256-gcm", "2022-blake3-aes-256-gcm"])
def test_disallowed_targets_are_closed_at_once_without_a_byte(servers, echo, method):
    """A client with the key that asks for a refused target (a real client such as Delta Chat trying a host it
    may not reach) gets no byte and a prompt close, so it fails fast instead of waiting for the deadline."""
    server = servers(method)
    before = echo.connections
    for target in REFUSED:
        started = time.monotonic()
        client = server.client(target=target, payload=b"x")
        assert_closed_at_once(client.sock, started)
        client.close()
    assert echo.connections == before, "a refused target reached the service"


def replay(server, flight):
    """Sends a recorded first flight again on a new connection; it must stay silent until the deadline."""
    sock = socket.create_connection(server.address, timeout=10)
    started = time.monotonic()
    sock.sendall(flight)
    assert_silent_until_deadline(sock, started)
    sock.close()


@pytest.mark.parametrize("method", ["aes-256-gcm", "2022-blake3-aes-256-gcm"])
def test_a_replayed_first_flight_is_refused(servers, method):
    server = servers(method)
    first = server.client(payload=b"replay-me")
    assert first.recv_exactly(9) == b"replay-me"
    replay(server, first.first_flight)
    first.close()


@pytest.mark.parametrize(
    "method,how",
    [
        ("aes-256-gcm", "stop"),
        ("aes-256-gcm", "crash after a save"),
        ("2022-blake3-aes-256-gcm", "stop"),
        ("2022-blake3-aes-256-gcm", "crash before a save"),
    ],
)
def test_a_flight_replayed_after_a_restart_is_refused(tmp_path, echo, checksum, method, how):
    """The salt history outlives the process (issue 12.6): saved at a clean stop, appended every second while
    running; after a crash, 2022 requests stamped before the new start are refused whatever was saved."""
    key = key_for(method)
    server = Server(tmp_path, method, key, echo.port, checksum.port)
    try:
        first = server.client(payload=b"before")
        assert first.recv_exactly(6) == b"before"
        first.close()
        if how == "stop":
            server.stop()
        else:
            if how == "crash after a save":
                time.sleep(2.5)  # the salt is appended within a second
            server.process.kill()
            server.process.wait()
        assert (tmp_path / "state" / f"shadowsocks-salts.{method}").exists()
        server = Server(tmp_path, method, key, echo.port, checksum.port)
        replay(server, first.first_flight)
        fresh = server.client(payload=b"after")
        assert fresh.recv_exactly(5) == b"after"
        fresh.close()
    finally:
        server.stop()


@pytest.mark.parametrize("method", ["aes-256-gcm", "2022-blake3-aes-256-gcm"])
def test_a_replayed_request_for_a_refused_target_is_drained_like_a_probe(servers, method):
    """The replay check comes before the destination policy: a prober replaying a recorded request cannot tell
    a refused target (closed at once for the real client) from any other failure."""
    server = servers(method)
    started = time.monotonic()
    first = server.client(target=("example.org", 993), payload=b"x")
    assert_closed_at_once(first.sock, started)
    first.close()
    replay(server, first.first_flight)


def test_a_reflected_response_is_refused(servers):
    """SIP004 streams look alike both ways: a response whose data starts with a valid address would pass as a
    request if the server did not remember its own salts."""
    server = servers("aes-256-gcm")
    payload = ssclient.address(NAME, 993) + b"reflected"
    client = server.client(payload=payload)
    raw = b""
    while len(raw) < 32 + 18 + len(payload) + 16:
        data = client.sock.recv(4096)
        assert data, "no echo"
        raw += data
    client.close()
    reflected = socket.create_connection(server.address, timeout=10)
    started = time.monotonic()
    reflected.sendall(raw)
    assert_silent_until_deadline(reflected, started)
    reflected.close()


def test_2022_timestamps_outside_30_seconds_are_refused(servers):
    server = servers("2022-blake3-aes-256-gcm")
    ok = server.client(payload=b"a", timestamp=int(time.time()) - 20)
    assert ok.recv_exactly(1) == b"a"
    ok.close()
    for skew in (-40, 40):
        started = time.monotonic()
        client = server.client(payload=b"a", timestamp=int(time.time()) + skew)
        assert_silent_until_deadline(client.sock, started)
        client.close()


@pytest.mark.parametrize("length", [1, 8, 12, 16, 17, 22, 33, 41, 49, 50, 51, 66, 221])
def test_probes_get_no_reply_and_stay_open_until_the_deadline(servers, length):
    server = servers("aes-256-gcm")
    sock = socket.create_connection(server.address, timeout=10)
    started = time.monotonic()
    sock.sendall(os.urandom(length))
    assert_silent_until_deadline(sock, started)
    sock.close()


def test_probes_against_2022_get_no_reply(servers):
    server = servers("2022-blake3-aes-128-gcm")
    socks = []
    for length in (16, 43, 50, 221, 1000):
        sock = socket.create_connection(server.address, timeout=10)
        socks.append((time.monotonic(), sock))
        sock.sendall(os.urandom(length))
    for started, sock in socks:
        assert_silent_until_deadline(sock, started)
        sock.close()


def test_a_wrong_key_gets_no_reply(servers):
    server = servers("aes-256-gcm")
    started = time.monotonic()
    client = ssclient.Client(server.address, "aes-256-gcm", "wrong", ssclient.address(NAME, 993), b"x")
    assert_silent_until_deadline(client.sock, started)
    client.close()


def parse_sip002(link):
    """Reads a SIP002 link as Delta Chat's shadowsocks crate does: a plain `method:password` userinfo is
    percent-decoded in two parts; otherwise the percent-decoded userinfo is base64url (padding optional)."""
    url = urllib.parse.urlsplit(link)
    assert url.scheme == "ss"
    userinfo, _, _ = url.netloc.rpartition("@")
    if ":" in userinfo:
        method, _, password = userinfo.partition(":")
        method, password = urllib.parse.unquote(method), urllib.parse.unquote(password)
        assert method.startswith("2022-"), "SIP004 links must be base64url"
    else:
        decoded = urllib.parse.unquote(userinfo)
        assert "=" not in decoded and "+" not in decoded and "/" not in decoded, "not base64url without padding"
        method, _, password = base64.urlsafe_b64decode(decoded + "=" * (-len(decoded) % 4)).decode().partition(":")
    return method, password, url.hostname, url.port or 8388, urllib.parse.unquote(url.fragment)


def assert_link_works(link, method, server_port):
    """The link's key carries data through the server on `server_port`: ss-local (SIP004) or the 2022 client."""
    parsed_method, password, host, port, tag = parse_sip002(link)
    assert (parsed_method, host, tag) == (method, NAME, NAME)
    if method.startswith("2022-"):
        client = ssclient.Client(("127.0.0.1", server_port), method, password, ssclient.address(NAME, 993),
                                 b"via link")
        assert client.recv_exactly(8) == b"via link"
        client.close()
    else:
        local, local_port = ss_local(server_port, password, parsed_method)
        try:
            checked_transfer(local_port, 465, download, 1 << 20)
        finally:
            stop(local)


@pytest.mark.parametrize("method", ["aes-256-gcm", "2022-blake3-aes-256-gcm"])
def test_chatmailctl_url_gives_the_key_the_supervisor_made(supervisor_factory, tmp_path, echo, checksum, method):
    """No key configured: chatmail-supervisor makes it before it starts the child, and it alone writes state.db.
    Before the supervisor ever ran, neither chatmailctl nor the child makes one (both say so). The child started
    by the supervisor gets the key over the control channel, chatmailctl prints the same key while the supervisor
    runs and after it stopped, and a child run on its own reads it from a read-only state.db."""
    state = tmp_path / "state"
    ctl = [str(bin_dir() / "chatmailctl"), "shadowsocks", "url"]
    port = free_port()
    sup = supervisor_factory(
        modes={"shadowsocks": str(bin_dir() / "chatmail-shadowsocks"), "turn": None, "iroh": None, "imap": None},
        ports={"shadowsocks": port}, extra={"shadowsocks": section_lines(method, None, echo.port, checksum.port)
                                            .splitlines()})
    before = subprocess.run(ctl + ["--config", str(sup.config)], capture_output=True, text=True, timeout=30)
    assert before.returncode != 0 and "no Shadowsocks key yet" in before.stderr, before
    alone = subprocess.run([str(bin_dir() / "chatmail-shadowsocks"), "--config", str(sup.config)],
                           capture_output=True, text=True, timeout=30)
    assert alone.returncode == 78 and "has not made one yet" in alone.stderr, alone
    assert not (state / "state.db").exists(), "neither made the state database"

    sup.start()
    sup.wait_state("shadowsocks", "ready", timeout=30)
    link = sup.ctl("shadowsocks", "url").stdout.strip()
    again = sup.ctl("shadowsocks", "url", "--qr").stdout
    assert again.splitlines()[0] == link
    assert "█" in again and len(again.splitlines()) > 10
    assert parse_sip002(link)[3] == port
    assert_link_works(link, method, port)  # the supervised child has the key chatmailctl printed
    assert sup.stop() == 0

    down = subprocess.run(ctl + ["--config", str(sup.config)], capture_output=True, text=True, timeout=30)
    assert down.returncode == 0 and down.stdout.strip() == link, down
    # A child on its own only reads: a read-only state directory is enough.
    server = Server(tmp_path, method, None, echo.port, checksum.port, prefix=read_only_prefix(state))
    try:
        assert_link_works(link, method, server.port)
    finally:
        server.stop()


def read_only_prefix(directory):
    """A command prefix that runs the command with `directory` mounted read-only in its own mount namespace, so
    that not even root can write there."""
    if subprocess.run(["unshare", "-m", "true"], capture_output=True).returncode != 0:
        pytest.skip("cannot make a mount namespace (unshare -m) for a read-only state directory")
    return ["unshare", "-m", "sh", "-c", 'mount --bind "$0" "$0" && mount -o remount,bind,ro "$0" "$0" && exec "$@"',
            str(directory)]


def test_idle_connections_are_closed_and_caps_hold(tmp_path, echo, checksum):
    """idle_timeout closes a quiet proxied connection; beyond max_half_open_per_source, a new connection is
    closed at once while the half-open ones stay until their deadline. (The readiness check of `Server` holds
    one half-open place until its deadline.)"""
    server = Server(tmp_path, "aes-256-gcm", "idle-key", echo.port, checksum.port,
                    extra="idle_timeout = 1\nmax_half_open_per_source = 3")
    try:
        client = server.client(payload=b"hi")
        assert client.recv_exactly(2) == b"hi"
        started = time.monotonic()
        client.sock.settimeout(5)
        assert client.recv() == b""
        assert 0.8 <= time.monotonic() - started <= 3
        client.close()

        half_open = [socket.create_connection(server.address, timeout=5) for _ in range(2)]
        for sock in half_open:
            sock.sendall(b"\x00")
        time.sleep(0.3)
        extra = socket.create_connection(server.address, timeout=5)
        try:
            assert extra.recv(1) == b""
        except ConnectionResetError:
            pass  # closed at once either way
        extra.close()
        for sock in half_open:
            sock.settimeout(0.2)
            with pytest.raises(socket.timeout):
                sock.recv(1)  # still open
            sock.close()
    finally:
        server.stop()


def test_a_few_busy_addresses_leave_half_open_places_for_others(tmp_path, echo, checksum):
    """Issue 12.6: the half-open places are shared by source; addresses that keep opening take only a share
    that shrinks as the places fill, so a client from a fresh address still gets in."""
    server = Server(tmp_path, "aes-256-gcm", "fair-key", echo.port, checksum.port,
                    extra="max_half_open = 24\nmax_half_open_per_source = 24")

    def open_from(source, count):
        socks = []
        for _ in range(count):
            sock = socket.socket()
            sock.bind((source, 0))
            sock.connect(server.address)
            socks.append(sock)
        return socks

    def still_open(sock):
        try:
            return sock.recv(1, socket.MSG_DONTWAIT) != b""
        except BlockingIOError:
            return True
        except ConnectionResetError:
            return False

    try:
        busy = [sock for n in range(1, 4) for sock in open_from(f"127.0.{n}.1", 24)]
        time.sleep(0.5)
        held = sum(still_open(sock) for sock in busy)
        assert held < 23, f"{held} of 24 places taken by three addresses (one is the readiness check)"
        client = ssclient.Client(server.address, "aes-256-gcm", "fair-key", ssclient.address(NAME, 993), b"hi",
                                 source_address=("127.0.9.1", 0))
        assert client.recv_exactly(2) == b"hi"
        client.close()
        for sock in busy:
            sock.close()
    finally:
        server.stop()
