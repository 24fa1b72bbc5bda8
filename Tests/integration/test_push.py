"""Push notifications: chatmail-imap posts Delta Chat's device tokens to a notification proxy
(here a local HTTPS server with a test CA given through the configuration) when mail arrives."""

import http.server
import socket
import sqlite3
import ssl
import subprocess
import threading
import time
from pathlib import Path

import pytest

from conftest import ROOT, wait_until
from test_imap import IMAPServer, PASSWORD, USER, DOMAIN, free_port
from test_tls import make_certificate

OTHER = "otheraaaa@" + DOMAIN
TOKEN_A = b"openpgp:" + b"A" * 700 + b"=="
TOKEN_B = b"openpgp:" + b"B" * 700 + b"=="


class Proxy:
    """A notification proxy: records every POST body; `answer(body)` gives the status (after
    `delay` seconds). HTTPS with a self-signed certificate unless `tls` is false."""

    def __init__(self, tmp: Path, port=None, tls=True, answer=lambda body: 200, delay=0.0, hang=False):
        self.received = []
        self.lock = threading.Lock()
        self.answer, self.delay, self.hang = answer, delay, hang
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with proxy.lock:
                    proxy.received.append(body)
                if proxy.hang:
                    time.sleep(3600)
                if proxy.delay:
                    time.sleep(proxy.delay)
                status = proxy.answer(body)
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", port or 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.ca = None
        if tls:
            self.ca, key = make_certificate(tmp, "localhost")
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(self.ca, key)
            self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.url = f"{'https' if tls else 'http'}://localhost:{self.port}/notify"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def bodies(self):
        with self.lock:
            return list(self.received)

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


def push_config(proxy_url, ca=None, **keys):
    lines = [f'push_url = "{proxy_url}"'] + ([f'push_ca_file = "{ca}"'] if ca else [])
    lines += [f"{key} = {value}" for key, value in keys.items()]
    return "\n".join(lines)


def login(server, user=USER):
    raw = server.raw()
    raw.until(b"\r\n")
    response = raw.command(b"A0001 LOGIN " + user.encode() + b" " + PASSWORD.encode())
    assert b"A0001 OK" in response
    return raw, response


def set_token(raw, token: bytes, tag=b"A0002"):
    return raw.command(tag + b' SETMETADATA "INBOX" (/private/devicetoken "' + token + b'")')


def stored_tokens(server):
    db = sqlite3.connect(server.tmp / "state" / "imap.sqlite", timeout=10)
    try:
        return sorted(row[0] for row in db.execute("SELECT token FROM push_token"))
    finally:
        db.close()


def pending(server):
    db = sqlite3.connect(server.tmp / "state" / "imap.sqlite", timeout=10)
    try:
        return db.execute("SELECT COUNT(*) FROM push_pending").fetchone()[0]
    finally:
        db.close()


@pytest.fixture
def proxy(tmp_path):
    proxy = Proxy(tmp_path)
    yield proxy
    proxy.stop()


def test_each_device_gets_one_post_over_https_and_self_sent_mail_posts_nothing(tmp_path, proxy):
    server = IMAPServer(tmp_path, push_config(proxy.url, proxy.ca))
    try:
        raw, response = login(server)
        assert b" XDELTAPUSH" in response.split(b"]")[0]
        assert set_token(raw, TOKEN_A) == b"A0002 OK SETMETADATA completed\r\n"
        phone = server.raw()
        phone.until(b"\r\n")
        phone.command(b"A0001 LOGIN " + USER.encode() + b" " + PASSWORD.encode())
        assert set_token(phone, TOKEN_B) == b"A0002 OK SETMETADATA completed\r\n"
        assert set_token(phone, TOKEN_B, b"A0003") == b"A0003 OK SETMETADATA completed\r\n"
        assert stored_tokens(server) == sorted([TOKEN_A, TOKEN_B])
        # Mail an account sends itself wakes nobody.
        server.deliver(to=(USER,), sender=USER)
        server.deliver(to=(USER,), sender="someone@elsewhere.org")
        wait_until(lambda: len(proxy.bodies()) >= 2, what="two posts")
        time.sleep(0.5)
        assert sorted(proxy.bodies()) == sorted([TOKEN_A, TOKEN_B])
        wait_until(lambda: pending(server) == 0, what="an empty queue")
        # Tokens never reach the log.
        assert b"AAAAAAAAAA" not in (tmp_path / "imap.log").read_bytes()
    finally:
        server.stop()


def test_push_off_posts_nothing_and_advertises_nothing(tmp_path, proxy):
    server = IMAPServer(tmp_path, push_config(proxy.url, proxy.ca, push="false"))
    try:
        raw, response = login(server)
        assert b"XDELTAPUSH" not in response
        set_token(raw, TOKEN_A)
        server.deliver()
        time.sleep(1)
        assert proxy.bodies() == [] and pending(server) == 0
    finally:
        server.stop()


def test_410_removes_the_token_and_failures_are_retried_on_the_schedule(tmp_path):
    failures = {"n": 0}

    def answer(body):
        if body == TOKEN_A:
            return 410
        failures["n"] += 1
        return 500 if failures["n"] <= 2 else 200

    proxy = Proxy(tmp_path, answer=answer)
    server = IMAPServer(tmp_path, push_config(proxy.url, proxy.ca, push_retry_base=2))
    try:
        raw, _ = login(server)
        set_token(raw, TOKEN_A)
        set_token(raw, TOKEN_B, b"A0003")
        server.deliver()
        # B: 500, after 2 s 500, after 4 s more 200; A: 410 once and deleted.
        wait_until(lambda: proxy.bodies().count(TOKEN_B) >= 3, timeout=20, what="two retries")
        wait_until(lambda: pending(server) == 0, what="an empty queue")
        assert proxy.bodies().count(TOKEN_A) == 1 and proxy.bodies().count(TOKEN_B) == 3
        assert stored_tokens(server) == [TOKEN_B]
        log = server.output()
        assert "sent=1 retried=2 gone=1 dropped=0" in log
        assert "status 500" in log
    finally:
        server.stop()
        proxy.stop()


def test_a_dead_proxy_is_retried_then_given_up_and_counted(tmp_path):
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        dead_port = closed.getsockname()[1]
    server = IMAPServer(tmp_path, push_config(
        f"http://127.0.0.1:{dead_port}/notify", push_retry_base=1, push_give_up=3))
    try:
        raw, _ = login(server)
        set_token(raw, TOKEN_A)
        server.deliver()
        # Tried at 0, 1, 2 and 3 s, then dropped; the token stays.
        wait_until(lambda: "dropped=1" in server.output(), timeout=20, what="the notification to be dropped")
        assert "retried=3" in server.output()
        assert pending(server) == 0 and stored_tokens(server) == [TOKEN_A]
        # LMTP and IMAP were never held up meanwhile.
        assert raw.command(b"A0009 NOOP") == b"A0009 OK NOOP completed\r\n"
    finally:
        server.stop()


def test_sigkill_after_250_posts_after_the_restart_once(tmp_path):
    hanging = Proxy(tmp_path, hang=True)
    port = hanging.port
    server = IMAPServer(tmp_path, push_config(hanging.url, hanging.ca))
    try:
        raw, _ = login(server)
        set_token(raw, TOKEN_A)
        server.deliver()  # 250: the notification is queued with the message
        wait_until(lambda: hanging.bodies(), what="the post to be under way")
        server.process.kill()
        server.process.wait()
        server.log.close()
    except BaseException:
        server.stop()
        raise
    finally:
        hanging.server.socket.close()
        hanging.stop()
    proxy = Proxy(tmp_path, port=port)
    server = IMAPServer(tmp_path, push_config(proxy.url, proxy.ca))
    try:
        wait_until(lambda: proxy.bodies(), what="the post after the restart")
        wait_until(lambda: pending(server) == 0, what="an empty queue")
        time.sleep(1)
        assert proxy.bodies() == [TOKEN_A]
    finally:
        server.stop()
        proxy.stop()


def test_a_burst_to_one_account_while_the_proxy_is_slow_gives_few_posts(tmp_path):
    proxy = Proxy(tmp_path, delay=1.0)
    server = IMAPServer(tmp_path, push_config(proxy.url, proxy.ca))
    try:
        raw, _ = login(server)
        set_token(raw, TOKEN_A)
        lmtp = __import__("smtplib").LMTP(server.lmtp_socket)
        started = time.monotonic()
        for _ in range(100):
            lmtp.sendmail("someone@elsewhere.org", [USER], b"Subject: x\r\n\r\nhi\r\n")
        burst = time.monotonic() - started
        lmtp.quit()
        wait_until(lambda: pending(server) == 0, timeout=30, what="an empty queue")
        posts = len(proxy.bodies())
        # The first post, then one for everything that came while it was under way (and perhaps
        # one more if the burst outlasted a post): never one per message.
        assert 1 <= posts <= 2 + int(burst), (posts, burst)
        assert set(proxy.bodies()) == {TOKEN_A}
    finally:
        server.stop()
        proxy.stop()


def test_bad_tokens_get_no_and_a_flood_of_setmetadata_is_harmless(tmp_path, proxy):
    server = IMAPServer(tmp_path, push_config(proxy.url, proxy.ca, max_push_token_size=1024))
    try:
        raw, _ = login(server)
        assert raw.command(b'A0002 SETMETADATA "INBOX" (/private/devicetoken "")') == b"A0002 NO Empty device token\r\n"
        assert raw.command(b'A0003 SETMETADATA "INBOX" (/private/devicetoken "' + b"x" * 1025 + b'")') == \
            b"A0003 NO [METADATA MAXSIZE 1024] Device token too long\r\n"
        for tag, token in [(b"A0004", b"a\r\nb"), (b"A0005", b"a\x00b"), (b"A0006", b"a\rb"), (b"A0007", b"a\nb")]:
            assert raw.command(tag + b' SETMETADATA "INBOX" (/private/devicetoken {%d+}\r\n' % len(token) + token
                               + b")") == tag + b" NO Device token must be printable ASCII without spaces\r\n"
        # 10,000 in a row (pipelined), all the same token: kept once, and the server stays quick.
        flood = b"".join(b'T%d SETMETADATA "INBOX" (/private/devicetoken "' % i + TOKEN_A + b'")\r\n'
                         for i in range(10_000))
        # Sent from a thread while this one reads the answers: the server reads on only as its
        # answers are read.
        raw.sock.settimeout(120)
        sender = threading.Thread(target=raw.sock.sendall, args=(flood,))
        sender.start()
        raw.until(b"T9999 OK SETMETADATA completed\r\n")
        sender.join()
        assert raw.command(b"A0008 NOOP") == b"A0008 OK NOOP completed\r\n"
        assert stored_tokens(server) == [TOKEN_A]
        # Beyond the count: a clear NO.
        for i in range(15):
            assert set_token(raw, b"t%d" % i, b"B%d" % i).endswith(b"OK SETMETADATA completed\r\n")
        assert set_token(raw, b"one-too-many", b"A0009") == \
            b"A0009 NO [METADATA TOOMANY] Too many device tokens\r\n"
        assert len(stored_tokens(server)) == 16
    finally:
        server.stop()


DELTACHAT_CFFI = ROOT / ".build" / "deltachat-cffi-2.23.0" / "bin" / "python"


class SMTPStub:
    """Enough SMTP for core's configuration: a greeting and EHLO without AUTH or STARTTLS."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                connection, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(connection,), daemon=True).start()

    def _serve(self, connection):
        with connection, connection.makefile("rb") as lines:
            connection.sendall(b"220 stub\r\n")
            for line in lines:
                verb = line[:4].upper()
                if verb == b"EHLO":
                    connection.sendall(b"250-stub\r\n250 8BITMIME\r\n")
                elif verb == b"QUIT":
                    connection.sendall(b"221 bye\r\n")
                    return
                else:
                    connection.sendall(b"250 ok\r\n")

    def stop(self):
        self.sock.close()


@pytest.mark.skipif(not DELTACHAT_CFFI.exists(), reason="needs Delta Chat core's CFFI bindings (make test-deps)")
def test_delta_chat_core_stores_its_token_and_the_proxy_gets_exactly_it(tmp_path, proxy):
    """The real core (libdeltachat 2.23 through its C API) sets a push token: it encrypts it to
    `openpgp:...` and sends SETMETADATA because we offer XDELTAPUSH; mail from another account
    makes the proxy receive exactly what core sent."""
    server = IMAPServer(tmp_path, push_config(proxy.url, proxy.ca))
    smtp = SMTPStub()
    log = open(tmp_path / "core.log", "w+")
    core = subprocess.Popen(
        [str(DELTACHAT_CFFI), str(Path(__file__).parent / "deltachat_push_client.py"), str(tmp_path / "dc"), USER,
         PASSWORD, str(server.port), str(smtp.port), "0155b93b7eb867a0d8b7328b978bb15bf22f70867e39e168d03f199af9496894"],
        stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_until(lambda: stored_tokens(server) or core.poll() is not None, timeout=90,
                   what="core to store its token")
        assert core.poll() is None, (tmp_path / "core.log").read_text()[-3000:]
        [token] = stored_tokens(server)
        assert token.startswith(b"openpgp:") and len(token) > 500
        server.deliver(sender="someone@elsewhere.org")
        wait_until(lambda: proxy.bodies(), what="the post")
        wait_until(lambda: pending(server) == 0, what="an empty queue")
        assert proxy.bodies() == [token]
    finally:
        core.kill()
        core.wait()
        log.close()
        smtp.stop()
        server.stop()


def test_a_proxy_that_never_answers_does_not_hold_up_the_stop(tmp_path):
    hanging = Proxy(tmp_path, hang=True)
    server = IMAPServer(tmp_path, push_config(hanging.url, hanging.ca))
    try:
        raw, _ = login(server)
        set_token(raw, TOKEN_A)
        server.deliver()
        wait_until(lambda: hanging.bodies(), what="the post to be under way")
        # SIGTERM: the child waits a little for the post, then exits cleanly (not killed after 10 s);
        # the notification stays queued for the next start.
        server.stop()
        assert server.process.returncode == 0
        assert pending(server) == 1
    finally:
        server.stop()
        hanging.server.socket.close()
        hanging.stop()
