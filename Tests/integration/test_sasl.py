"""chatmail-imap's Dovecot auth socket (SASL for Postfix), spoken to directly as Postfix's
xsasl_dovecot_server.c speaks it: handshake, PLAIN and LOGIN exchanges, the shared accounts and
failed-login limiter with IMAP, closed account creation, and clients that misbehave."""

import base64
import imaplib
import re
import resource
import socket
import ssl
import subprocess
import time

import pytest

from conftest import bin_dir
from test_imap import DOMAIN, IMAPServer

# 1000 connections at once from this process, and chatmail-imap (started from it) inherits the limit.
_soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
if _soft < 4096:
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(4096, _hard), _hard))

PASSWORD = "password123"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


class AuthClient:
    """One connection to the auth socket, line by line."""

    def __init__(self, path, timeout=10):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        # A blocking connect waits while the listen backlog is full (a non-blocking one fails with EAGAIN).
        self.sock.connect(path)
        self.sock.settimeout(timeout)
        self.buffer = b""

    def send(self, text: str):
        self.sock.sendall(text.encode())

    def line(self) -> str:
        while b"\n" not in self.buffer:
            data = self.sock.recv(65536)
            if not data:
                raise EOFError(self.buffer)
            self.buffer += data
        line, self.buffer = self.buffer.split(b"\n", 1)
        return line.decode()

    def handshake(self):
        """Postfix's opening; returns the server's handshake lines up to DONE."""
        self.send("VERSION\t1\t0\nCPID\t4242\n")
        lines = []
        while not lines or lines[-1] != "DONE":
            lines.append(self.line())
        return lines

    def request(self, text: str) -> str:
        self.send(text + "\n")
        return self.line()

    def plain(self, id, user, password=PASSWORD, rip="127.0.0.1", secured=True):
        flags = "\tsecured" if secured else ""
        response = b64(b"\0" + user.encode() + b"\0" + password.encode())
        return self.request(f"AUTH\t{id}\tPLAIN\tservice=smtp\tnologin\tlip=127.0.0.1\trip={rip}{flags}\tresp={response}")

    def closed(self):
        """True once the server has closed the connection (after any lines it sent)."""
        try:
            while True:
                data = self.sock.recv(65536)
                if not data:
                    return True
        except ConnectionResetError:
            return True

    def close(self):
        self.sock.close()


def new_server(tmp_path, extra="", plaintext_login=False):
    server = IMAPServer(tmp_path, extra=f'auth_socket = "{tmp_path}/run/auth"\n{extra}',
                        plaintext_login=plaintext_login)
    server.auth_socket = str(tmp_path / "run" / "auth")
    return server


@pytest.fixture
def server(tmp_path):
    server = new_server(tmp_path)
    yield server
    server.stop()


def client(server) -> AuthClient:
    c = AuthClient(server.auth_socket)
    c.handshake()
    return c


def imap_login(server, user, password=PASSWORD):
    m = imaplib.IMAP4_SSL("127.0.0.1", server.tls_port, ssl_context=ssl._create_unverified_context())
    try:
        return m.login(user, password)[0]
    finally:
        m.logout()



def test_handshake_lists_mechanisms_before_spid(server):
    c = AuthClient(server.auth_socket)
    lines = c.handshake()
    assert lines[:3] == ["VERSION\t1\t2", "MECH\tPLAIN\tplaintext", "MECH\tLOGIN\tplaintext"], lines
    assert re.fullmatch(r"SPID\t\d+", lines[3]) and re.fullmatch(r"CUID\t\d+", lines[4]), lines
    assert re.fullmatch(r"COOKIE\t[0-9a-f]{32}", lines[5]) and lines[6:] == ["DONE"], lines
    assert int(lines[3].split("\t")[1]) == server.process.pid


def test_plain_creates_on_first_login_and_reuses_the_socket(server):
    c = client(server)
    user = "alice0001@" + DOMAIN
    # With an initial response: the first login creates the account, as IMAP's does.
    assert c.plain(1, user.upper()) == f"OK\t1\tuser={user}"
    assert c.plain(2, user, "wrong-password") == f"FAIL\t2\tuser={user}\treason=Authentication failed"
    # Without one: an empty challenge, then the response.
    assert c.request("AUTH\t3\tPLAIN\tservice=smtp\tnologin\tlip=127.0.0.1\trip=127.0.0.1\tsecured") == "CONT\t3\t"
    response = b64("\0".join([user, user, PASSWORD]).encode())
    assert c.request(f"CONT\t3\t{response}") == f"OK\t3\tuser={user}"
    # The account SASL created logs into IMAP with the same password.
    assert imap_login(server, user) == "OK"
    # And one IMAP created logs in over SASL.
    assert imap_login(server, "bobby0001@" + DOMAIN) == "OK"
    assert c.plain(4, "bobby0001@" + DOMAIN) == f"OK\t4\tuser=bobby0001@{DOMAIN}"


def test_login_with_and_without_initial_response(server):
    c = client(server)
    user = "carol0001@" + DOMAIN
    assert c.request("AUTH\t1\tLOGIN\tservice=smtp\tnologin\tlip=127.0.0.1\trip=127.0.0.1\tsecured") == \
        "CONT\t1\tVXNlcm5hbWU6"
    assert c.request(f"CONT\t1\t{b64(user.encode())}") == "CONT\t1\tUGFzc3dvcmQ6"
    assert c.request(f"CONT\t1\t{b64(PASSWORD.encode())}") == f"OK\t1\tuser={user}"
    assert c.request(f"AUTH\t2\tLOGIN\tservice=smtp\tsecured\tresp={b64(user.encode())}") == "CONT\t2\tUGFzc3dvcmQ6"
    assert c.request(f"CONT\t2\t{b64(b'not-the-password')}") == f"FAIL\t2\tuser={user}\treason=Authentication failed"


def test_refusals_keep_the_connection(server):
    c = client(server)
    assert c.plain(1, "short@" + DOMAIN) == f"FAIL\t1\tuser=short@{DOMAIN}\treason=Authentication failed"
    assert c.plain(2, "alice0002@other.org") == "FAIL\t2\tuser=alice0002@other.org\treason=Authentication failed"
    assert c.request("AUTH\t3\tPLAIN\tservice=smtp\tsecured\tresp=%%%") == "FAIL\t3\treason=Invalid base64 data"
    nul = b64(b"ali\0ce0001@example.org")
    assert c.request(f"AUTH\t4\tLOGIN\tservice=smtp\tsecured\tresp={nul}") == "FAIL\t4\treason=Invalid user name"
    assert c.request("AUTH\t5\tCRAM-MD5\tservice=smtp\tsecured") == "FAIL\t5\treason=Unsupported authentication mechanism"
    assert c.request("CONT\t77\tAAAA") == "FAIL\t77\treason=Authentication request timed out"
    # Without `secured` and without plaintext_login: refused before any password is looked at.
    assert c.plain(6, "alice0001@" + DOMAIN, secured=False) == \
        "FAIL\t6\treason=Plaintext authentication disallowed on non-secure connections"
    assert c.plain(7, "alice0001@" + DOMAIN) == f"OK\t7\tuser=alice0001@{DOMAIN}"


@pytest.mark.parametrize("opening", [
    "AUTH\t1\tPLAIN\tservice=smtp\tsecured\n",  # before VERSION
    "garbage\n",
    "VERSION\t2\t0\n",
    "VERSION\t1\t0\nCPID\t1\nHELO\tthere\n",  # unknown command
    "VERSION\t1\t0\nCPID\t1\nAUTH\t1\tPLAIN\tsecured\tresp=" + "A" * 20000 + "\n",  # over the line cap
    "VERSION\t1\t0\nCPID\t1\n" + "A" * 20000,  # over the cap without a line end
    "\0\0\0\n",
])
def test_protocol_errors_close_and_others_are_served(server, opening):
    c = AuthClient(server.auth_socket)
    c.send(opening)
    assert c.closed()
    other = client(server)
    assert other.plain(1, "alice0001@" + DOMAIN) == f"OK\t1\tuser=alice0001@{DOMAIN}"
    assert server.process.poll() is None


def test_a_silent_client_is_closed_after_the_handshake_timeout(server):
    c = AuthClient(server.auth_socket, timeout=30)
    started = time.monotonic()
    assert c.closed()
    assert time.monotonic() - started < 25


def test_failed_logins_are_limited_per_rip_together_with_imap(tmp_path):
    server = new_server(tmp_path, "max_failed_logins_per_minute = 3")
    try:
        c = client(server)
        user = "alice0001@" + DOMAIN
        assert c.plain(1, user) == f"OK\t1\tuser={user}"
        for id in (2, 3, 4):
            assert c.plain(id, user, "wrong-password").startswith(f"FAIL\t{id}\t")
        # That SMTP client's address is refused now, even with the right password; another is not.
        assert c.plain(5, user) == f"FAIL\t5\tuser={user}\treason=Too many failed logins, try later"
        assert c.plain(6, user, rip="192.0.2.1") == f"OK\t6\tuser={user}"
        # IMAP from 127.0.0.1 shares the budget.
        with pytest.raises(imaplib.IMAP4.error, match="UNAVAILABLE"):
            imap_login(server, user)
    finally:
        server.stop()


def test_account_creations_are_limited_per_rip_together_with_imap(tmp_path):
    server = new_server(tmp_path, "max_account_creations_per_hour = 2")
    try:
        c = client(server)
        assert c.plain(1, "alice0001@" + DOMAIN) == f"OK\t1\tuser=alice0001@{DOMAIN}"
        assert imap_login(server, "bobby0001@" + DOMAIN) == "OK"
        # Two creations from 127.0.0.1, one through each door: the third is refused on both.
        assert c.plain(2, "carol0001@" + DOMAIN) == \
            f"FAIL\t2\tuser=carol0001@{DOMAIN}\treason=Too many new accounts from your address, try later"
        with pytest.raises(imaplib.IMAP4.error, match="Too many new accounts"):
            imap_login(server, "carol0001@" + DOMAIN)
        # Existing accounts, and creations from another address, go on.
        assert c.plain(3, "alice0001@" + DOMAIN) == f"OK\t3\tuser=alice0001@{DOMAIN}"
        assert c.plain(4, "carol0001@" + DOMAIN, rip="192.0.2.1") == f"OK\t4\tuser=carol0001@{DOMAIN}"
    finally:
        server.stop()


def test_plaintext_login_allows_requests_without_secured(tmp_path):
    server = new_server(tmp_path, plaintext_login=True)
    try:
        assert client(server).plain(1, "alice0001@" + DOMAIN, secured=False) == f"OK\t1\tuser=alice0001@{DOMAIN}"
    finally:
        server.stop()


def test_many_concurrent_connections_and_a_client_that_stops_reading(server):
    clients = []
    try:
        for _ in range(1000):
            clients.append(AuthClient(server.auth_socket, timeout=30))
        # Every one gets its handshake and an answer (a refusal that needs no password hashing).
        for c in clients:
            c.send("VERSION\t1\t0\nCPID\t1\nAUTH\t1\tCRAM-MD5\tservice=smtp\tsecured\n")
        for c in clients:
            while c.line() != "DONE":
                pass
            assert c.line() == "FAIL\t1\treason=Unsupported authentication mechanism"
        # A client that sends requests and never reads the answers: its socket fills, then we stop reading it.
        stalled = AuthClient(server.auth_socket)
        stalled.sock.setblocking(False)
        request = b"".join(b"AUTH\t%d\tCRAM-MD5\tservice=smtp\tsecured\n" % i for i in range(1, 20001))
        data = b"VERSION\t1\t0\nCPID\t1\n" + request * 10
        sent, deadline = 0, time.monotonic() + 10
        while sent < len(data) and time.monotonic() < deadline:
            try:
                sent += stalled.sock.send(data[sent:sent + 65536])
            except BlockingIOError:
                time.sleep(0.05)
        assert sent < len(data), "the server kept reading from a client that does not read"
        # Meanwhile the others are served.
        other = client(server)
        assert other.plain(1, "alice0001@" + DOMAIN) == f"OK\t1\tuser=alice0001@{DOMAIN}"
        assert clients[0].plain(2, "alice0001@" + DOMAIN) == f"OK\t2\tuser=alice0001@{DOMAIN}"
        stalled.close()
        assert server.process.poll() is None
    finally:
        for c in clients:
            c.close()


def ctl_creation(server):
    result = subprocess.run([str(bin_dir() / "chatmailctl"), "user", "creation", "--config", str(server.config)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_nocreate_closes_account_creation_over_sasl_and_imap(server, tmp_path):
    c = client(server)
    assert c.plain(1, "alice0001@" + DOMAIN) == f"OK\t1\tuser=alice0001@{DOMAIN}"
    assert ctl_creation(server).startswith("account creation: open")
    nocreate = tmp_path / "state" / "nocreate"
    nocreate.touch()
    assert ctl_creation(server) == f"account creation: closed: {nocreate} exists\n"
    assert c.plain(2, "dave00001@" + DOMAIN).startswith("FAIL\t2\t")
    with pytest.raises(imaplib.IMAP4.error):
        imap_login(server, "erin00001@" + DOMAIN)
    # Existing accounts go on.
    assert c.plain(3, "alice0001@" + DOMAIN) == f"OK\t3\tuser=alice0001@{DOMAIN}"
    assert imap_login(server, "alice0001@" + DOMAIN) == "OK"
    nocreate.unlink()
    assert c.plain(4, "dave00001@" + DOMAIN) == f"OK\t4\tuser=dave00001@{DOMAIN}"


def test_the_free_space_floor_closes_account_creation(tmp_path):
    server = new_server(tmp_path, 'min_free_space = "1000000T"')
    try:
        assert "below min_free_space" in ctl_creation(server)
        # An operator still adds accounts; they log in; new names are refused on both doors.
        added = subprocess.run([str(bin_dir() / "chatmailctl"), "user", "add", "alice0001@" + DOMAIN, "--password",
                                PASSWORD, "--config", str(server.config)], capture_output=True, text=True, timeout=60)
        assert added.returncode == 0, added.stderr
        c = client(server)
        assert c.plain(1, "alice0001@" + DOMAIN) == f"OK\t1\tuser=alice0001@{DOMAIN}"
        assert imap_login(server, "alice0001@" + DOMAIN) == "OK"
        assert c.plain(2, "dave00001@" + DOMAIN).startswith("FAIL\t2\t")
        with pytest.raises(imaplib.IMAP4.error):
            imap_login(server, "erin00001@" + DOMAIN)
    finally:
        server.stop()
