"""chatmail-imap's I/O bounds: output a client does not read, deadlines, large bodies, deleted accounts."""

import os
import socket
import ssl
import subprocess
import time

import pytest

from conftest import bin_dir, wait_until
from test_imap import IMAPServer, PASSWORD, RawClient, USER

SIZE = 24 * 1024 * 1024
TIMEOUTS = "handshake_timeout = 2\nlogin_timeout = 3\nsend_timeout = 4"


def big_message(size=SIZE):
    header = b"From: a@x\r\nSubject: big\r\n\r\n"
    line = b"x" * 998 + b"\r\n"
    body = line * ((size - len(header)) // len(line) + 1)
    return header + body[: size - len(header)]


def status(process, key):
    """A /proc/<pid>/status figure in bytes (VmRSS, VmHWM)."""
    with open(f"/proc/{process.pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    raise KeyError(key)


def logged_in(server):
    raw = server.raw()
    raw.until(b"\r\n")
    assert b"a OK" in raw.command(b"a LOGIN " + USER.encode() + b" " + PASSWORD.encode())
    raw.command(b"b SELECT INBOX")
    return raw


def test_fetch_without_reading_keeps_memory_bounded(tmp_path):
    """FETCH of a 24 MB message written in a loop, never reading: commands wait while the
    output is unread, memory stays bounded, and the client is dropped after send_timeout."""
    server = IMAPServer(tmp_path, extra=TIMEOUTS)
    try:
        raw = logged_in(server)  # creates the account
        server.deliver(big_message())
        raw.command(b"c NOOP")
        time.sleep(0.5)
        baseline = status(server.process, "VmRSS")
        bound = baseline + 4 * SIZE
        sock = raw.sock
        sock.settimeout(0.2)
        peak, n, started, closed = baseline, 0, time.monotonic(), False
        while time.monotonic() - started < 10:
            try:
                sock.send(b"f%d FETCH 1 BODY.PEEK[]\r\n" % n)
                n += 1
            except socket.timeout:
                pass
            except OSError:
                closed = True
                break
            peak = max(peak, status(server.process, "VmRSS"))
            assert peak < bound, f"RSS {peak >> 20} MB after {n} commands (baseline {baseline >> 20} MB)"
        print(f"{n} commands written; RSS baseline {baseline >> 20} MB, peak {peak >> 20} MB")
        assert closed or "did not read its responses" in server.output(), (n, peak >> 20)
        assert server.process.poll() is None
    finally:
        server.stop()


def test_fetch_of_a_large_body_holds_it_once(tmp_path):
    """The body goes from the store to the socket without a second whole copy: peak RSS grows by
    less than 1.5x the message size (a fresh process, so that nothing is reused from delivery)."""
    server = IMAPServer(tmp_path)
    logged_in(server).command(b"z LOGOUT")
    server.deliver(big_message())
    server.stop()
    server = IMAPServer(tmp_path)
    try:
        raw = logged_in(server)
        raw.command(b"c FETCH 1 RFC822.SIZE")
        time.sleep(0.3)
        with open(f"/proc/{server.process.pid}/clear_refs", "w") as f:
            f.write("5")  # resets VmHWM to the current RSS
        before = status(server.process, "VmHWM")
        response = raw.command(b"d FETCH 1 BODY.PEEK[]")
        assert len(response) > SIZE and response.endswith(b"d OK FETCH completed\r\n")
        growth = status(server.process, "VmHWM") - before
        print(f"peak RSS grew by {growth >> 20} MB for a {SIZE >> 20} MB body")
        assert growth < 1.5 * SIZE, f"peak grew by {growth >> 20} MB for a {SIZE >> 20} MB body"
    finally:
        server.stop()


@pytest.fixture
def quick(tmp_path):
    server = IMAPServer(tmp_path, extra=TIMEOUTS)
    yield server
    server.stop()


def test_tls_port_without_handshake_is_closed(quick):
    sock = socket.create_connection(("127.0.0.1", quick.tls_port), timeout=5)
    assert RawClient(sock).closed(timeout=8)


def test_starttls_without_handshake_is_closed(quick):
    raw = quick.raw()
    raw.until(b"\r\n")
    assert raw.command(b"a STARTTLS").startswith(b"a OK")
    assert raw.closed(timeout=8)


def test_completed_handshake_is_not_cut(quick):
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    sock = context.wrap_socket(socket.create_connection(("127.0.0.1", quick.tls_port), timeout=5))
    raw = RawClient(sock)
    raw.until(b"\r\n")
    assert raw.command(b"a LOGIN " + USER.encode() + b" " + PASSWORD.encode()).startswith(b"a OK")
    time.sleep(2.5)
    assert raw.command(b"b NOOP").startswith(b"b OK")


def test_idle_before_login_gets_bye(quick):
    raw = quick.raw()
    raw.until(b"\r\n")
    raw.sock.settimeout(8)
    assert b"* BYE" in raw.until(b"\r\n")
    assert raw.closed(timeout=5)


def test_user_del_ends_live_sessions(quick):
    raw = logged_in(quick)
    raw.send(b"c IDLE\r\n")
    assert raw.line().startswith(b"+ ")
    other = logged_in(quick)
    result = subprocess.run(
        [str(bin_dir() / "chatmailctl"), "user", "del", "--config", str(quick.config), USER],
        capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    for client in (raw, other):
        client.sock.settimeout(3)
        assert client.until(b"\r\n").startswith(b"* BYE"), "no BYE"
        assert client.closed(timeout=3)
