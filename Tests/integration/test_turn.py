"""chatmail-turn against real peers nobody here wrote: coturn's turnutils_uclient / turnutils_peer /
turnutils_stunclient and the Python aioice TURN client; plus raw-socket checks of the peer policy and
credentials. Everything on loopback, ephemeral ports, bounded in time."""

import asyncio
import hashlib
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import bin_dir, terminate, wait_until
from turn_stun import attr, msg, parse, rest, xaddr, xpeer

SECRET = "s3cr3t-for-tests"
REALM = "test.local"

needs_coturn = pytest.mark.skipif(
    shutil.which("turnutils_uclient") is None, reason="coturn's turnutils (apt coturn) not installed")


def free_port(both=True):
    """A port free for UDP (and TCP when `both`) on 127.0.0.1."""
    for _ in range(100):
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        udp.bind(("127.0.0.1", 0))
        port = udp.getsockname()[1]
        try:
            if both:
                tcp = socket.socket()
                try:
                    tcp.bind(("127.0.0.1", port))
                except OSError:
                    continue
                finally:
                    tcp.close()
            return port
        finally:
            udp.close()
    raise RuntimeError("no free port")


class TurnServer:
    def __init__(self, tmp: Path, allowed_peers=("127.0.0.1",), extra=""):
        self.port = free_port()
        self.tls_port = free_port()
        low = 20000 + (os.getpid() * 7 % 20) * 1000
        self.relay_ports = (low, low + 999)
        peers = ", ".join(f'"{p}"' for p in allowed_peers)
        self.config = tmp / "turn.conf"
        self.config.write_text(
            f"""
[supervisor]
state_dir = "{tmp}/state"
runtime_dir = "{tmp}/run"
log_level = "info"
[turn]
listen = "127.0.0.1:{self.port}"
tls_listen = "127.0.0.1:{self.tls_port}"
host = "127.0.0.1"
realm = "{REALM}"
relay_ports = "{low}-{low + 999}"
allowed_peers = [{peers}]
secret = "{SECRET}"
max_allocations_per_user = 1000
threads = 2
{extra}
[iroh]
enabled = false
[tls]
self_signed = true
names = ["localhost"]
""")
        self.log_path = tmp / "turn.log"
        self.log = open(self.log_path, "w")
        env = {k: v for k, v in os.environ.items() if k != "CHATMAIL_CONTROL_FD"}
        self.process = subprocess.Popen(
            [str(bin_dir() / "chatmail-turn"), "--config", str(self.config)], stdout=self.log, stderr=self.log,
            env=env, start_new_session=True)
        wait_until(self.answers_binding, timeout=20, what="chatmail-turn to answer Binding on every listener")

    def answers_binding(self):
        """UDP answers as soon as the shards run, before the TCP and TLS listeners are bound, so all three
        are checked (a uclient over TLS started in between was refused and printed no totals)."""
        if self.process.poll() is not None:
            pytest.fail(f"chatmail-turn exited with {self.process.returncode}")
        try:
            sock = udp_socket(0.2)
            sock.sendto(msg(0x0001, os.urandom(12), []), ("127.0.0.1", self.port))
            if parse(sock.recv(2000))[0] != 0x0101:
                return False
            for port in (self.port, self.tls_port):
                socket.create_connection(("127.0.0.1", port), timeout=2).close()
            return True
        except OSError:
            return False

    def stop(self):
        terminate(self.process)
        self.log.close()


def udp_socket(timeout=2.0):
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.settimeout(timeout)
    sock.bind(("127.0.0.1", 0))
    return sock


@pytest.fixture
def turn(tmp_path):
    server = TurnServer(tmp_path)
    yield server
    server.stop()
    assert server.process.returncode == 0


@pytest.fixture
def strict_turn(tmp_path):
    """A server with the default peer policy (nothing on loopback allowed) and IPv4 and IPv6 relays."""
    server = TurnServer(tmp_path, allowed_peers=(), extra='relay_addresses = ["127.0.0.1", "::1"]')
    yield server
    server.stop()


@pytest.fixture
def echo_peer():
    """coturn's turnutils_peer: a UDP echo server on loopback."""
    if shutil.which("turnutils_peer") is None:
        pytest.skip("turnutils_peer (apt coturn) not installed")
    port = free_port(both=False)
    process = subprocess.Popen(
        ["turnutils_peer", "-L", "127.0.0.1", "-p", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True)
    time.sleep(0.3)
    yield port
    process.kill()
    process.wait()


class Client:
    """A raw TURN client over UDP: allocates with REST credentials and sends requests."""

    def __init__(self, server_port, secret=SECRET, username_ttl=3600):
        self.sock = udp_socket()
        self.server = ("127.0.0.1", server_port)
        self.user, self.password, self.key = rest(secret, REALM, username_ttl)
        self.nonce = b""

    def transact(self, method, attrs, auth=True):
        tid = os.urandom(12)
        if auth:
            attrs = attrs + [attr(0x0006, self.user.encode()), attr(0x0014, REALM.encode()), attr(0x0015, self.nonce)]
        self.sock.sendto(msg(method, tid, attrs, self.key if auth else None), self.server)
        mtype, attributes = parse(self.sock.recv(4000))
        return mtype, attributes, tid

    def send_raw(self, data):
        """A datagram (ChannelData, an indication) to the server as it is."""
        self.sock.sendto(data, self.server)

    def allocate(self, dual=False, extra=()):
        mtype, attributes, _ = self.transact(0x0003, [attr(0x0019, b"\x11\0\0\0")], auth=False)
        assert mtype == 0x0113 and error_code(attributes) == 401
        assert attributes[0x0014] == REALM.encode()
        self.nonce = attributes[0x0015]
        # ADDITIONAL-ADDRESS-FAMILY IPv6 asks for a second, IPv6 relayed address.
        family = [attr(0x8000, b"\x02\0\0\0")] if dual else []
        return self.transact(0x0003, [attr(0x0019, b"\x11\0\0\0"), *family, *extra])


def error_code(attributes):
    value = attributes.get(0x0009)
    return None if value is None else (value[2] & 7) * 100 + value[3]


def uclient(args, timeout=60):
    result = subprocess.run(
        ["turnutils_uclient", *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=timeout)
    return result.returncode, result.stdout


def totals(output):
    sent = re.findall(r"tot_send_msgs=(\d+), tot_recv_msgs=(\d+)\n", output)
    lost = re.search(r"Total lost packets (\d+)", output)
    return (tuple(map(int, sent[-1])) if sent else None), (int(lost.group(1)) if lost else None)


# STUN Binding


def test_binding_answers_with_the_mapped_address_only(turn):
    sock = udp_socket()
    tid = os.urandom(12)
    sock.sendto(msg(0x0001, tid, []), ("127.0.0.1", turn.port))
    data = sock.recv(2000)
    mtype, attributes = parse(data)
    assert mtype == 0x0101
    assert list(attributes) == [0x0020]
    assert xaddr(attributes[0x0020], tid) == sock.getsockname()
    assert len(data) == 32  # no SOFTWARE, no extras: 1.6x amplification at most
    # Over TCP as well.
    with socket.create_connection(("127.0.0.1", turn.port), timeout=2) as tcp:
        tcp.sendall(msg(0x0001, tid, []))
        mtype, attributes = parse(tcp.recv(2000))
        assert mtype == 0x0101 and xaddr(attributes[0x0020], tid) == tcp.getsockname()


@needs_coturn
def test_turnutils_stunclient(turn):
    result = subprocess.run(
        ["turnutils_stunclient", "-p", str(turn.port), "127.0.0.1"], stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True, timeout=20)
    assert "UDP reflexive addr: 127.0.0.1:" in result.stdout, result.stdout


# turnutils_uclient: every message echoed through the relay at a fixed moderate rate


@needs_coturn
@pytest.mark.parametrize(
    "name, flags",
    [
        ("udp-channels", ["-c"]),
        ("udp-send-indications", ["-c", "-s"]),
        ("tcp", ["-c", "-t"]),
        ("tls", ["-c", "-t", "-S"]),
        # Without -c uclient pairs every allocation with an RTCP one: EVEN-PORT with R, then RESERVATION-TOKEN.
        ("udp-rtp-rtcp", []),
        ("tcp-rtp-rtcp", ["-t"]),
    ])
def test_uclient_echo_without_loss(turn, echo_peer, name, flags):
    port = turn.tls_port if "-S" in flags else turn.port
    code, output = uclient(
        [*flags, "-W", SECRET, "-p", str(port), "-e", "127.0.0.1", "-r", str(echo_peer), "-m", "10", "-l", "120",
         "-n", "100", "-z", "10", "127.0.0.1"])
    assert code == 0, output[-2000:]
    (sent, received), lost = totals(output)
    assert (sent, received, lost) == (1000, 1000, 0), output[-2000:]


@needs_coturn
def test_uclient_client_to_client_through_our_own_relays(turn):
    """-y: pairs of allocations talk to each other's relayed addresses (two users of one server)."""
    code, output = uclient(
        ["-y", "-c", "-W", SECRET, "-p", str(turn.port), "-m", "4", "-l", "100", "-n", "100", "-z", "10", "127.0.0.1"])
    (sent, received), lost = totals(output)
    assert code == 0 and sent == received and sent > 0 and lost == 0, output[-2000:]
    # Those packets never went through the kernel: the server hands them from allocation to allocation.
    turn.stop()
    handed = sum(map(int, re.findall(r"relayed (\d+) packets in process", turn.log_path.read_text())))
    assert handed >= sent, turn.log_path.read_text()[-2000:]


@needs_coturn
def test_uclient_wrong_secret_fails(turn, echo_peer):
    code, output = uclient(
        ["-W", "wrong", "-p", str(turn.port), "-e", "127.0.0.1", "-r", str(echo_peer), "-m", "1", "-n", "5", "-c",
         "127.0.0.1"], timeout=30)
    assert "Cannot complete Allocation" in output or code != 0, output[-2000:]
    assert "tot_recv_msgs=5" not in output


# aioice: a TURN client from the Python WebRTC stack (ChannelBind only)


def test_aioice_allocate_channel_and_data_both_ways(turn):
    aioice_turn = pytest.importorskip("aioice.turn")

    async def run():
        received = asyncio.Queue()

        class Inner(asyncio.DatagramProtocol):
            def datagram_received(self, data, addr):
                received.put_nowait((data, addr))

        user, password, _ = rest(SECRET, REALM)
        transport, _ = await aioice_turn.create_turn_endpoint(
            Inner, server_addr=("127.0.0.1", turn.port), username=user, password=password)
        relayed = transport.get_extra_info("sockname")
        assert relayed[0] == "127.0.0.1" and turn.relay_ports[0] <= relayed[1] <= turn.relay_ports[1]

        peer = udp_socket()
        peer.setblocking(False)
        loop = asyncio.get_running_loop()
        for index in range(5):
            payload = f"to peer {index}".encode()
            transport.sendto(payload, peer.getsockname())
            data, source = await asyncio.wait_for(loop.sock_recvfrom(peer, 2000), 5)
            assert data == payload and source == relayed
            await loop.sock_sendto(peer, b"back " + payload, relayed)
            data, addr = await asyncio.wait_for(received.get(), 5)
            assert data == b"back " + payload and addr == peer.getsockname()
        transport.close()
        await asyncio.sleep(0.2)

    asyncio.run(asyncio.wait_for(run(), 30))


# Peer policy: denied forms are refused on every path that takes a peer address

DENIED = [
    ("127.0.0.1", 5000), ("127.0.0.2", 5000), ("0.0.0.0", 5000), ("10.0.0.1", 5000), ("192.168.1.1", 5000),
    ("172.16.0.1", 5000), ("100.64.0.1", 5000), ("169.254.169.254", 80), ("224.0.0.1", 5000),
    ("255.255.255.255", 5000), ("::1", 5000), ("::ffff:127.0.0.1", 5000), ("::ffff:10.0.0.1", 5000),
    ("::", 5000), ("64:ff9b::a00:1", 5000), ("2002:7f00:1::", 5000), ("2001:0:5ef5:79fd::f5ff:fffe", 5000),
    ("fe80::1", 5000), ("fc00::1", 5000), ("ff02::1", 5000),
]


def test_denied_peers_are_refused(strict_turn):
    """CreatePermission and ChannelBind answer 403 for every denied form (Send is checked below)."""
    client = Client(strict_turn.port)
    mtype, attributes, tid = client.allocate(dual=True)
    assert mtype == 0x0103, attributes
    assert xaddr(attributes[0x0016], tid)[0] == "127.0.0.1"
    for number, (host, port) in enumerate(DENIED):
        for method in (0x0008, 0x0009):
            tid = os.urandom(12)  # IPv6 XOR-PEER-ADDRESS depends on it
            attrs = [attr(0x0012, xpeer(host, port, tid))]
            if method == 0x0009:
                attrs.append(attr(0x000C, bytes([0x40, number, 0, 0])))
            attrs += [attr(0x0006, client.user.encode()), attr(0x0014, REALM.encode()), attr(0x0015, client.nonce)]
            client.sock.sendto(msg(method, tid, attrs, client.key), client.server)
            mtype, attributes = parse(client.sock.recv(2000))
            assert error_code(attributes) == 403, (host, hex(method), hex(mtype))


def test_own_service_ports_are_refused_even_when_loopback_is_allowed(turn):
    client = Client(turn.port)
    assert client.allocate()[0] == 0x0103
    for port in (turn.port, turn.tls_port):
        tid = os.urandom(12)
        attrs = [attr(0x0012, xpeer("127.0.0.1", port, tid)), attr(0x0006, client.user.encode()),
                 attr(0x0014, REALM.encode()), attr(0x0015, client.nonce)]
        client.sock.sendto(msg(0x0008, tid, attrs, client.key), client.server)
        assert error_code(parse(client.sock.recv(2000))[1]) == 403


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_a_channel_to_a_released_relay_reaches_nothing(strict_turn, transport):
    """B binds a channel to A's relayed address (allowed: ours); A deletes itself and a local process takes its
    port: B's ChannelData must not reach that process, nor the process's datagrams reach B."""
    a = Client(strict_turn.port)
    mtype, attributes, tid = a.allocate()
    assert mtype == 0x0103, attributes
    a_relay = xaddr(attributes[0x0016], tid)
    b = Client(strict_turn.port) if transport == "udp" else TCPClient(strict_turn.port)
    mtype, attributes, tid = b.allocate()
    assert mtype == 0x0103, attributes
    b_relay = xaddr(attributes[0x0016], tid)
    mtype, attributes, _ = b.transact(0x0009, [attr(0x000C, b"\x40\x01\0\0"), attr(0x0012, xpeer(*a_relay, tid))])
    assert mtype == 0x0109, attributes
    # While A lives, B's ChannelData reaches A's client (as a Data indication: A has a permission for B).
    mtype, attributes, tid = a.transact(0x0008, [attr(0x0012, xpeer(*b_relay, os.urandom(12)))])
    assert mtype == 0x0108, attributes
    b.send_raw(b"\x40\x01\x00\x04ping")
    mtype, attributes = parse(a.sock.recv(2000))
    assert mtype == 0x0017 and attributes[0x0013] == b"ping"

    assert a.transact(0x0004, [attr(0x000D, b"\0\0\0\0")])[0] == 0x0104
    wait_until(lambda: can_bind(a_relay), timeout=5, what="A's relayed port to be released")
    squatter = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    squatter.bind(a_relay)
    squatter.settimeout(1.0)
    try:
        for _ in range(5):
            b.send_raw(b"\x40\x01\x00\x04leak")
        with pytest.raises(socket.timeout):
            print("the squatter got", squatter.recvfrom(2000))
        # Nor does the squatter reach B through the channel's permission.
        squatter.sendto(b"reply", b_relay)
        b.sock.settimeout(1.0)
        with pytest.raises(socket.timeout):
            print("B got", b.sock.recv(2000))
    finally:
        squatter.close()


def test_send_indication_to_a_denied_peer_goes_nowhere(strict_turn):
    client = Client(strict_turn.port)
    assert client.allocate()[0] == 0x0103
    target = udp_socket(0.5)
    tid = os.urandom(12)
    host, port = target.getsockname()
    client.sock.sendto(msg(0x0016, tid, [attr(0x0012, xpeer(host, port, tid)), attr(0x0013, b"leak")]), client.server)
    with pytest.raises(socket.timeout):
        target.recv(100)


# Credentials


def test_expired_and_wrong_credentials_get_401_and_the_realm(turn):
    for client in (Client(turn.port, username_ttl=-10), Client(turn.port, secret="wrong")):
        mtype, attributes, _ = client.allocate()
        assert mtype == 0x0113 and error_code(attributes) == 401
    client = Client(turn.port)
    assert client.allocate()[0] == 0x0103
    client.nonce = b"0000000000000000000000ff"
    mtype, attributes, _ = client.transact(0x0004, [attr(0x000D, b"\0\0\x02\x58")])
    assert error_code(attributes) == 438 and attributes[0x0015] != client.nonce


def test_credentials_that_expire_later_than_the_ttl_allows_are_refused(turn):
    """The default credential_ttl is 5 days: a credential for 10 years (a leaked secret's) gets 401."""
    mtype, attributes, _ = Client(turn.port, username_ttl=10 * 365 * 86400).allocate()
    assert mtype == 0x0113 and error_code(attributes) == 401
    assert Client(turn.port, username_ttl=5 * 86400 - 5).allocate()[0] == 0x0103


def test_refresh_zero_releases_the_allocation(turn):
    client = Client(turn.port)
    mtype, attributes, tid = client.allocate()
    assert mtype == 0x0103
    relayed = xaddr(attributes[0x0016], tid)
    mtype, attributes, _ = client.transact(0x0004, [attr(0x000D, b"\0\0\0\0")])
    assert mtype == 0x0104 and attributes[0x000D] == b"\0\0\0\0"
    # The relayed port is closed: binding it works again.
    wait_until(lambda: can_bind(relayed), timeout=5, what="the relayed port to be released")
    mtype, attributes, _ = client.transact(0x0004, [])
    assert error_code(attributes) == 437


def can_bind(address):
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.bind(address)
        return True
    except OSError:
        return False
    finally:
        sock.close()


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_even_port_reserves_the_next_port_for_its_token(turn, transport):
    """EVEN-PORT with R: an even relayed port and a RESERVATION-TOKEN for the next one, which a second Allocate
    (another client, as uclient's RTCP one) takes; the token then is spent (508)."""
    rtp = Client(turn.port) if transport == "udp" else TCPClient(turn.port)
    mtype, attributes, tid = rtp.allocate(extra=[attr(0x0018, b"\x80")])
    assert mtype == 0x0103, attributes
    relayed = xaddr(attributes[0x0016], tid)
    token = attributes[0x0022]
    assert relayed[1] % 2 == 0 and len(token) == 8
    assert not can_bind((relayed[0], relayed[1] + 1)), "the next port is not held"
    rtcp = Client(turn.port) if transport == "tcp" else TCPClient(turn.port)
    mtype, attributes, tid = rtcp.allocate(extra=[attr(0x0022, token)])
    assert mtype == 0x0103, attributes
    assert xaddr(attributes[0x0016], tid) == (relayed[0], relayed[1] + 1)
    mtype, attributes, _ = Client(turn.port).allocate(extra=[attr(0x0022, token)])
    assert mtype == 0x0113 and error_code(attributes) == 508


class TCPClient(Client):
    """The same raw client over TCP (one STUN message per read is enough for these small answers)."""

    def __init__(self, server_port):
        super().__init__(server_port)
        self.sock = socket.create_connection(("127.0.0.1", server_port), timeout=5)

    def transact(self, method, attrs, auth=True):
        tid = os.urandom(12)
        if auth:
            attrs = attrs + [attr(0x0006, self.user.encode()), attr(0x0014, REALM.encode()), attr(0x0015, self.nonce)]
        self.sock.sendall(msg(method, tid, attrs, self.key if auth else None))
        mtype, attributes = parse(self.sock.recv(4000))
        return mtype, attributes, tid

    def send_raw(self, data):
        self.sock.sendall(data)


# TCP and TLS clients: deadlines, and no unbounded output


@pytest.fixture
def hasty_turn(tmp_path):
    """A server with 1 s for the handshake and first message, 2 s for an allocation (and for a client that reads
    nothing)."""
    server = TurnServer(tmp_path, extra="handshake_timeout = 1\nunallocated_timeout = 2")
    yield server
    server.stop()


def closed_within(sock, seconds):
    """Whether the server closes `sock` within `seconds` (what it sent before is read and dropped)."""
    deadline = time.monotonic() + seconds
    try:
        while time.monotonic() < deadline:
            sock.settimeout(max(0.1, deadline - time.monotonic()))
            if not sock.recv(1 << 16):
                return True
    except ConnectionError:
        return True
    except socket.timeout:
        pass
    return False


def test_tcp_and_tls_connections_without_a_message_or_an_allocation_are_closed(hasty_turn):
    # Silence over TCP, and a TLS handshake that never comes.
    for port in (hasty_turn.port, hasty_turn.tls_port):
        with socket.create_connection(("127.0.0.1", port), timeout=5) as silent:
            assert closed_within(silent, 10), port
    # A TLS handshake begun and left: a ClientHello's first bytes.
    with socket.create_connection(("127.0.0.1", hasty_turn.tls_port), timeout=5) as partial:
        partial.sendall(bytes.fromhex("160301020001"))
        assert closed_within(partial, 10)
    # Messages but no allocation: answered, then closed.
    with socket.create_connection(("127.0.0.1", hasty_turn.port), timeout=5) as tcp:
        tcp.sendall(msg(0x0001, os.urandom(12), []))
        assert parse(tcp.recv(2000))[0] == 0x0101
        assert closed_within(tcp, 10)
    # With an allocation the connection stays past both deadlines.
    client = TCPClient(hasty_turn.port)
    assert client.allocate()[0] == 0x0103
    time.sleep(3)
    assert refresh(client) == 0x0104


def test_a_tcp_client_that_reads_nothing_gets_nothing_buffered(hasty_turn):
    """Binding requests written without reading an answer: the server stops reading (the client's sending
    blocks after a few buffers' worth, not after everything) and closes the connection."""
    client = TCPClient(hasty_turn.port)
    assert client.allocate()[0] == 0x0103
    client.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    client.sock.settimeout(3)
    batch = b"".join(msg(0x0001, os.urandom(12), []) for _ in range(3000))
    before = rss_kib(hasty_turn.process.pid)
    sent = 0
    with pytest.raises((socket.timeout, ConnectionError)):
        while sent < 64 << 20:
            client.sock.sendall(batch)
            sent += len(batch)
    grown = rss_kib(hasty_turn.process.pid) - before
    print(f"sent {sent >> 10} KiB; the server grew by {grown} KiB")
    assert sent < 16 << 20 and grown < 32 << 10
    # (Closing a client that stays unwritable is tested in TURNServerTests: here the kernel's buffers may hold
    # it all, and the server's side of the connection never stays unwritable.)
    assert hasty_turn.answers_binding()


def rss_kib(pid):
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmRSS:\s+(\d+) kB", status).group(1))


def test_garbage_does_not_hurt(turn):
    sock = udp_socket(0.3)
    for payload in (b"", b"\x00", os.urandom(19), b"\x80" * 40, b"\x40\x00\xff\xff", os.urandom(1200)):
        sock.sendto(payload, ("127.0.0.1", turn.port))
    with socket.create_connection(("127.0.0.1", turn.port), timeout=2) as tcp:
        tcp.sendall(b"\xffGET / HTTP/1.1\r\n\r\n")
        assert tcp.recv(100) == b""  # closed without an answer
    assert turn.answers_binding()


# Under the supervisor: credentials from discovery, secrets pushed and rotated


def test_supervised_discovery_credentials_and_rotation_keep_live_allocations(tmp_path):
    from conftest import Supervisor

    port, tls_port = free_port(), free_port()
    sup = Supervisor(tmp_path, modes={"imap": None, "iroh": None, "shadowsocks": None})
    sup.config.write_text(f"""
[supervisor]
state_dir = "state"
runtime_dir = "run"
control_socket = "run/control.sock"
log_level = "debug"
ready_timeout = 20
[turn]
command = "{bin_dir() / 'chatmail-turn'}"
listen = "127.0.0.1:{port}"
tls_listen = "127.0.0.1:{tls_port}"
host = "127.0.0.1"
realm = "{REALM}"
[imap]
enabled = false
[iroh]
enabled = false
[shadowsocks]
enabled = false
""")
    sup.socket = str(tmp_path / "run" / "control.sock")
    try:
        sup.start()
        sup.wait_state("turn", "ready", timeout=30)

        def discovered_client(account=None):
            request = {"id": 1, "type": "discovery"} | ({"account": account} if account else {})
            value = sup.request(request)["discovery"]["turn"]
            host, server_port, expiry, password = value.split(":")
            assert (host, int(server_port)) == ("127.0.0.1", port)
            client = Client(port)
            client.user = expiry  # Delta Chat's form: the bare expiry timestamp
            client.key = hashlib.md5(f"{expiry}:{REALM}:{password}".encode()).digest()
            return client

        # The secret arrives after hello; until then (a moment) answers are 401.
        first = discovered_client()
        wait_until(lambda: first.allocate()[0] == 0x0103, timeout=10, what="an allocation with discovered credentials")
        # Each account its own credential (so its own quota), also when two fetch in the same second; both work,
        # and an account keeps its credential from one session to the next.
        alice, bob = discovered_client("alice@test.local"), discovered_client("bob@test.local")
        assert alice.user != bob.user and alice.user == discovered_client("alice@test.local").user
        assert int(time.time()) < int(alice.user) <= int(time.time()) + 5 * 86400
        assert alice.allocate()[0] == 0x0103 and bob.allocate()[0] == 0x0103
        sup.ctl("turn", "rotate-secret")
        second = discovered_client()
        assert second.key != first.key
        wait_until(lambda: second.allocate()[0] == 0x0103, timeout=10, what="the rotated secret to reach the child")
        # The previous secret still mints allocations; live ones keep refreshing across two rotations.
        assert refresh(first) == 0x0104
        sup.ctl("turn", "rotate-secret")
        time.sleep(0.5)
        assert refresh(first) == 0x0104 and refresh(second) == 0x0104
        # Credentials minted under the first secret stay good for new allocations until they expire.
        older = Client(port)
        older.user, older.key = first.user, first.key
        mtype, attributes, _ = older.allocate()
        assert mtype == 0x0103, attributes
    finally:
        sup.cleanup()


def refresh(client):
    return client.transact(0x0004, [attr(0x000D, b"\0\0\x02\x58")])[0]


# A public-looking peer, reachable in a network namespace of its own


@pytest.fixture
def public_peer():
    """A UDP echo on 11.1.x.2:5000 in a new network namespace, linked to this one by a veth pair whose
    host side is 11.1.x.1 (11.0.0.0/8 is ordinary unicast space: the default policy allows it)."""
    if os.geteuid() != 0 or shutil.which("ip") is None:
        pytest.skip("needs root and iproute2 to make a network namespace")
    tag = os.getpid() % 200 + 10
    ns, host_if, peer_if = f"turnpeer{os.getpid()}", f"tph{os.getpid() % 100000}", f"tpp{os.getpid() % 100000}"
    host_ip, peer_ip = f"11.1.{tag}.1", f"11.1.{tag}.2"
    commands = [
        ["ip", "netns", "add", ns],
        ["ip", "link", "add", host_if, "type", "veth", "peer", "name", peer_if],
        ["ip", "link", "set", peer_if, "netns", ns],
        ["ip", "addr", "add", f"{host_ip}/24", "dev", host_if],
        ["ip", "link", "set", host_if, "up"],
        ["ip", "netns", "exec", ns, "ip", "addr", "add", f"{peer_ip}/24", "dev", peer_if],
        ["ip", "netns", "exec", ns, "ip", "link", "set", peer_if, "up"],
        ["ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up"],
    ]
    echo = None
    try:
        for command in commands:
            subprocess.run(command, check=True, capture_output=True, timeout=10)
        echo = subprocess.Popen(
            ["ip", "netns", "exec", ns, sys.executable, "-c",
             "import socket\n"
             f"s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(('{peer_ip}', 5000))\n"
             "while True:\n    data, addr = s.recvfrom(4096); s.sendto(b'echo ' + data, addr)\n"])
        time.sleep(0.5)
        yield host_ip, peer_ip
    finally:
        if echo:
            echo.kill()
            echo.wait()
        subprocess.run(["ip", "link", "del", host_if], capture_output=True, timeout=10)
        subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=10)


def test_public_peer_with_the_default_policy(tmp_path, public_peer):
    host_ip, peer_ip = public_peer
    server = TurnServer(tmp_path, allowed_peers=(), extra=f'relay_addresses = ["{host_ip}"]')
    try:
        client = Client(server.port)
        mtype, attributes, tid = client.allocate()
        assert mtype == 0x0103 and xaddr(attributes[0x0016], tid)[0] == host_ip
        # Send indication out, Data indication back.
        tid = os.urandom(12)
        mtype, attributes, _ = client.transact(0x0008, [attr(0x0012, xpeer(peer_ip, 5000, os.urandom(12)))])
        assert mtype == 0x0108, attributes
        client.sock.sendto(msg(0x0016, tid, [attr(0x0012, xpeer(peer_ip, 5000, tid)), attr(0x0013, b"hello")]),
                           client.server)
        mtype, attributes = parse(client.sock.recv(2000))
        assert mtype == 0x0017 and attributes[0x0013] == b"echo hello"
        # ChannelBind, ChannelData both ways.
        mtype, _, _ = client.transact(0x0009, [attr(0x000C, b"\x40\x01\0\0"),
                                               attr(0x0012, xpeer(peer_ip, 5000, os.urandom(12)))])
        assert mtype == 0x0109
        client.sock.sendto(b"\x40\x01\x00\x03abc\x00", client.server)
        assert client.sock.recv(2000) == b"\x40\x01\x00\x08echo abc"
    finally:
        server.stop()
