"""chatmail-imap against real clients: Python imaplib and imapclient, LMTP from smtplib."""

import base64
import hashlib
import hmac
import imaplib
import os
import re
import smtplib
import socket
import sqlite3
import ssl
import subprocess
import threading
import time
import zlib
from pathlib import Path

import pytest

from conftest import bin_dir, wait_until

imapclient = pytest.importorskip("imapclient")

DOMAIN = "example.org"
USER = "abcdefghi@" + DOMAIN
PASSWORD = "password123"
MESSAGE = b"From: a@x\r\nMessage-ID: <m1@x>\r\nSubject: hello\r\n\r\nHello, world\r\n"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class IMAPServer:
    def __init__(self, tmp: Path, extra: str = "", plaintext_login=True):
        self.tmp = tmp
        self.port, self.tls_port, self.lmtp_port = free_port(), free_port(), free_port()
        self.lmtp_socket = str(tmp / "run" / "lmtp.sock")
        self.config = tmp / "imap.conf"
        self.config.write_text(f"""
[supervisor]
state_dir = "{tmp}/state"
runtime_dir = "{tmp}/run"
control_socket = "{tmp}/run/control.sock"
log_level = "debug"
[imap]
listen = "127.0.0.1:{self.port}"
tls_listen = "127.0.0.1:{self.tls_port}"
lmtp_socket = "{self.lmtp_socket}"
lmtp_listen = "127.0.0.1:{self.lmtp_port}"
mail_domain = "{DOMAIN}"
plaintext_login = {"true" if plaintext_login else "false"}
comment = "Chatmail \\"test\\" server"
admin = "mailto:root@{DOMAIN}"
password_iterations = 1000
{extra}
[turn]
host = "127.0.0.1"
[iroh]
url = "http://127.0.0.1:3340"
[tls]
self_signed = true
names = ["localhost"]
""")
        self.log = open(tmp / "imap.log", "w+")
        self.process = subprocess.Popen(
            [str(bin_dir() / "chatmail-imap"), "--config", str(self.config)], stdout=self.log, stderr=self.log)
        try:
            wait_until(lambda: "LMTP listening on [" in self.output() or self.process.poll() is not None,
                       what="chatmail-imap to listen")
            assert self.process.poll() is None, self.output()
        except BaseException:
            self.stop()
            raise

    def output(self):
        return (self.tmp / "imap.log").read_text()

    def client(self):
        return imaplib.IMAP4("127.0.0.1", self.port)

    def deliver(self, message=MESSAGE, to=(USER,), unix=True, sender="sender@elsewhere.org"):
        lmtp = smtplib.LMTP(self.lmtp_socket) if unix else smtplib.LMTP("127.0.0.1", self.lmtp_port)
        try:
            return lmtp.sendmail(sender, list(to), message)
        finally:
            lmtp.quit()

    def raw(self, port=None):
        sock = socket.create_connection(("127.0.0.1", port or self.port), timeout=5)
        return RawClient(sock)

    def stop(self):
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()


class RawClient:
    """Bytes on the wire, for exact response shapes."""

    def __init__(self, sock):
        self.sock = sock
        self.buffer = b""
        self.inflate = None
        self.deflate = None

    def send(self, data: bytes):
        if self.deflate:
            data = self.deflate.compress(data) + self.deflate.flush(zlib.Z_SYNC_FLUSH)
        self.sock.sendall(data)

    def _fill(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise EOFError("connection closed; had " + repr(self.buffer))
        self.buffer += self.inflate.decompress(chunk) if self.inflate else chunk

    def until(self, marker: bytes) -> bytes:
        while marker not in self.buffer:
            self._fill()
        index = self.buffer.index(marker) + len(marker)
        data, self.buffer = self.buffer[:index], self.buffer[index:]
        return data

    def line(self) -> bytes:
        """One response line, with any literals it carries."""
        data = self.until(b"\r\n")
        while (match := re.search(rb"\{(\d+)\}\r\n$", data)):
            size = int(match.group(1))
            while len(self.buffer) < size:
                self._fill()
            data += self.buffer[:size]
            self.buffer = self.buffer[size:]
            data += self.until(b"\r\n")
        return data

    def command(self, line: bytes, tag: bytes = None) -> bytes:
        """Sends `line` and returns every response line up to and including the tagged one."""
        tag = tag or line.split(b" ")[0]
        self.send(line + b"\r\n")
        out = b""
        while True:
            response = self.line()
            out += response
            if response.startswith(tag + b" "):
                return out

    def closed(self, timeout=5) -> bool:
        self.sock.settimeout(timeout)
        try:
            while True:
                if not self.sock.recv(65536):
                    return True
        except (ConnectionResetError, BrokenPipeError):
            return True
        except socket.timeout:
            return False


@pytest.fixture
def server(tmp_path):
    server = IMAPServer(tmp_path)
    yield server
    server.stop()


def test_login_select_fetch_store_close(server):
    # The MTA's LMTP client is another user: the socket is open, its directory guards it.
    assert os.stat(server.lmtp_socket).st_mode & 0o777 == 0o666
    m = server.client()
    assert "STARTTLS" in m.capabilities and "METADATA" not in m.capabilities
    typ, data = m.login(USER, PASSWORD)
    assert typ == "OK" and b"[CAPABILITY IMAP4rev1" in data[0] and b"METADATA" in data[0] and b"XCHATMAIL" in data[0]
    assert server.deliver() == {}
    assert server.deliver(MESSAGE.replace(b"m1", b"m2")) == {}
    typ, data = m.select("INBOX")
    assert typ == "OK" and data == [b"2"]
    assert m.untagged_responses["UIDNEXT"] == [b"3"] and m.untagged_responses["UIDVALIDITY"][0].isdigit()
    # Delta Chat's prefetch, with an upper bound past the last UID.
    typ, data = m.uid("FETCH", "1:500", "(UID RFC822.SIZE BODY.PEEK[HEADER.FIELDS (MESSAGE-ID DATE)])")
    assert typ == "OK"
    assert data[0][0] == b"1 (UID 1 RFC822.SIZE %d BODY[HEADER.FIELDS (MESSAGE-ID DATE)] {22}" % len(MESSAGE)
    assert data[0][1] == b"Message-ID: <m1@x>\r\n\r\n"
    typ, data = m.uid("FETCH", "2", "(FLAGS BODY.PEEK[])")
    assert data[0][1] == MESSAGE.replace(b"m1", b"m2") and b"FLAGS ()" in data[0][0]
    typ, data = m.fetch("1", "(FLAGS INTERNALDATE RFC822.SIZE BODY[])")
    assert typ == "OK" and data[0][1] == MESSAGE and b"\\Seen" in data[0][0]
    assert m.uid("FETCH", "9:20", "(UID)") == ("OK", [None])
    assert m.uid("STORE", "1:2", "+FLAGS", "(\\Deleted)")[0] == "OK"
    assert m.store("2", "-FLAGS", "(\\Deleted)")[0] == "OK"
    assert m.store("2", "FLAGS", "(\\Flagged)") == ("OK", [b"2 (FLAGS (\\Flagged))"])
    assert m.close()[0] == "OK"
    typ, data = m.select("INBOX")
    assert data == [b"1"]
    assert m.uid("FETCH", "1:*", "(UID)")[1] == [b"1 (UID 2)"]
    assert m.logout()[0] == "BYE"


def test_login_with_literals_and_quoting(server):
    sock = server.raw()
    sock.until(b"\r\n")
    sock.send(b"a LOGIN {%d}\r\n" % len(USER))
    assert sock.until(b"\r\n").startswith(b"+ ")
    sock.send(USER.encode() + b" {11+}\r\n" + PASSWORD.encode() + b"\r\n")
    assert b"a OK [CAPABILITY" in sock.until(b"Logged in\r\n")
    m = server.client()
    assert m.login(USER, PASSWORD)[0] == "OK"
    # A password with a quote and a backslash travels quoted and escaped: the first login creates
    # the account with it, the second must present exactly the same.
    m2 = imapclient.IMAPClient("127.0.0.1", port=server.port, ssl=False)
    m2.login("quotedone@" + DOMAIN, 'pa"ss\\word1')
    m3 = imapclient.IMAPClient("127.0.0.1", port=server.port, ssl=False)
    m3.login("quotedone@" + DOMAIN, 'pa"ss\\word1')
    with pytest.raises(imapclient.exceptions.LoginError):
        imapclient.IMAPClient("127.0.0.1", port=server.port, ssl=False).login("quotedone@" + DOMAIN, "pa\"ss")


def test_mailboxes_move_copy_status_quota_id(server):
    c = imapclient.IMAPClient("127.0.0.1", port=server.port, ssl=False)
    c.login(USER, PASSWORD)
    for _ in range(3):
        server.deliver()
    assert b"chatmail-swift" in repr(c.id_({"name": "Delta Chat"})).encode()
    assert c.create_folder("DeltaChat")
    with pytest.raises(imapclient.exceptions.IMAPClientError):
        c.create_folder("DeltaChat")
    assert [f[2] for f in c.list_folders()] == ["INBOX", "DeltaChat"]
    assert [f[2] for f in c.list_sub_folders()] == ["INBOX", "DeltaChat"]
    c.select_folder("INBOX")
    assert c.has_capability("MOVE")
    c.move([2], "DeltaChat")
    c.copy([3], "DeltaChat")
    assert c.folder_status("DeltaChat", ["MESSAGES", "UIDNEXT", "UNSEEN"]) == {
        b"MESSAGES": 2, b"UIDNEXT": 3, b"UNSEEN": 2}
    assert c.search("ALL") == [1, 3]
    assert c.noop()[0].startswith(b"NOOP")
    quota = c.get_quota_root("INBOX")
    assert quota[0].mailbox == "INBOX" and quota[1][0].resource == "STORAGE" and quota[1][0].limit == 102400
    c.delete_messages([1])
    assert c.expunge() == (b"EXPUNGE completed", [(1, b"EXPUNGE")])
    assert c.search("ALL") == [3]
    c.logout()


def test_idle_is_woken_by_lmtp_delivery_at_once(server):
    c = imapclient.IMAPClient("127.0.0.1", port=server.port, ssl=False)
    c.login(USER, PASSWORD)
    c.select_folder("INBOX")
    c.idle()
    started = time.monotonic()
    threading.Timer(0.3, server.deliver).start()
    responses = c.idle_check(timeout=10)
    elapsed = time.monotonic() - started
    assert (1, b"EXISTS") in responses, responses
    assert elapsed < 2, elapsed
    c.idle_done()
    assert c.fetch([1], ["RFC822.SIZE"])[1][b"RFC822.SIZE"] == len(MESSAGE)
    c.logout()


def test_getmetadata_has_the_shape_delta_chat_parses(server):
    raw = server.raw()
    raw.until(b"\r\n")
    assert raw.command(b'A0001 GETMETADATA "" (/shared/comment)').endswith(b"A0001 NO Not authenticated\r\n")
    raw.command(b"A0002 LOGIN " + USER.encode() + b" " + PASSWORD.encode())
    response = raw.command(
        b'A0003 GETMETADATA "" (/shared/comment /shared/admin /shared/vendor/deltachat/irohrelay '
        b'/shared/vendor/deltachat/turn /shared/vendor/deltachat/maxsmtprecipients /shared/vendor/deltachat/appversions)')
    # Standalone: no TURN or iroh entries; the comment has a quote, so it is a literal.
    assert response == (
        b'* METADATA "" (/shared/comment {22}\r\nChatmail "test" server /shared/admin "mailto:root@example.org" '
        b'/shared/vendor/deltachat/maxsmtprecipients "1000")\r\nA0003 OK GETMETADATA completed\r\n')
    assert raw.command(b'A0004 GETMETADATA "" (/shared/vendor/deltachat/turn)') == b"A0004 OK GETMETADATA completed\r\n"
    assert raw.command(b'A0005 SETMETADATA "INBOX" (/private/devicetoken {9+}\r\nopenpgp:x)') == \
        b"A0005 OK SETMETADATA completed\r\n"
    # Device tokens are secrets: kept for push notifications, never read back.
    assert raw.command(b'A0006 GETMETADATA "INBOX" (/private/devicetoken)') == b"A0006 OK GETMETADATA completed\r\n"


def test_starttls_and_the_tls_port(server):
    context = ssl._create_unverified_context()
    m = server.client()
    assert m.starttls(ssl_context=context)[0] == "OK"
    assert "STARTTLS" not in m.capabilities
    assert m.login(USER, PASSWORD)[0] == "OK"
    m.logout()
    t = imaplib.IMAP4_SSL("127.0.0.1", server.tls_port, ssl_context=context)
    assert t.login(USER, PASSWORD)[0] == "OK"
    assert t.socket().version() in ("TLSv1.2", "TLSv1.3")
    t.logout()
    # Commands pipelined after STARTTLS in clear text are not executed.
    raw = server.raw()
    raw.until(b"\r\n")
    raw.send(b"a STARTTLS\r\nb LOGIN " + USER.encode() + b" " + PASSWORD.encode() + b"\r\n")
    data = b""
    try:
        data = raw.until(b"\r\n")
        data += raw.sock.recv(1000)
    except (EOFError, ConnectionResetError, socket.timeout):
        pass
    assert b"b OK" not in data


def test_compress_deflate(server):
    raw = server.raw()
    raw.until(b"\r\n")
    raw.command(b"a LOGIN " + USER.encode() + b" " + PASSWORD.encode())
    server.deliver()
    assert raw.command(b"b COMPRESS DEFLATE") == b"b OK DEFLATE active\r\n"
    raw.inflate = zlib.decompressobj(-15)
    raw.deflate = zlib.compressobj(6, zlib.DEFLATED, -15)
    assert b"* 1 EXISTS" in raw.command(b"c SELECT INBOX")
    response = raw.command(b"d UID FETCH 1 (BODY.PEEK[])")
    assert MESSAGE in response and response.endswith(b"d OK FETCH completed\r\n")
    assert raw.command(b"e COMPRESS DEFLATE") == b"e NO [COMPRESSIONACTIVE] Already compressing\r\n"


def test_lmtp_refusals_and_quota(tmp_path):
    server = IMAPServer(tmp_path, extra="quota_mb = 1\nmax_message_size = 600000")
    try:
        m = server.client()
        m.login(USER, PASSWORD)
        refused = server.deliver(to=[USER, "nobody123@" + DOMAIN, "x@other.org"], unix=False)
        assert set(refused) == {"nobody123@" + DOMAIN, "x@other.org"} and refused["x@other.org"][0] == 550
        big = b"Subject: big\r\n\r\n" + (b"x" * 998 + b"\r\n") * 500
        assert server.deliver(big) == {}
        assert server.deliver(big) == {}
        with pytest.raises(smtplib.SMTPDataError) as info:
            server.deliver(big)
        assert info.value.smtp_code == 552
        with pytest.raises(smtplib.SMTPSenderRefused) as info:
            server.deliver(b"x" * 700000)
        assert info.value.smtp_code == 552
        typ, data = m.select("INBOX")
        assert data == [b"3"]
        assert m.getquotaroot("INBOX")[1][1] == [b'"" (STORAGE 977 1024)']
    finally:
        server.stop()


def test_bad_input_gets_errors_and_no_crash(server):
    raw = server.raw()
    raw.until(b"\r\n")
    assert raw.command(b"a FROBNICATE") == b"a BAD Unknown command\r\n"
    assert raw.command(b"b LOGIN " + USER.encode() + b" " + PASSWORD.encode() + b" garbage") == \
        b"b BAD Unexpected text after the command\r\n"
    raw.send(b"c LOGIN {999999999}\r\n")
    assert raw.until(b"\r\n") == b"c BAD [TOOBIG] Literal too large\r\n"
    assert raw.command(b"d NOOP") == b"d OK NOOP completed\r\n"
    raw.send(b"x" * 20000 + b"\r\n")
    assert b"BYE" in raw.until(b"BYE")
    assert raw.closed()
    # A client that vanishes mid-literal, and binary garbage.
    vanishing = server.raw()
    vanishing.until(b"\r\n")
    vanishing.send(b"a LOGIN {100}\r\n")
    vanishing.until(b"\r\n")
    vanishing.send(b"abc")
    vanishing.sock.close()
    garbage = server.raw()
    garbage.send(bytes(range(256)) * 10)
    garbage.sock.close()
    # LMTP: a malformed message is stored as given; an unterminated one is not.
    imaplib.IMAP4("127.0.0.1", server.port).login(USER, PASSWORD)
    assert server.deliver(b"no header at all") == {}
    lmtp = socket.create_connection(("127.0.0.1", server.lmtp_port), timeout=5)
    lmtp.sendall(b"LHLO x\r\nMAIL FROM:<>\r\nRCPT TO:<" + USER.encode() + b">\r\nDATA\r\npartial")
    time.sleep(0.2)
    lmtp.close()
    # Still serving, with exactly the one accepted message.
    m = server.client()
    m.login(USER, PASSWORD)
    assert m.select("INBOX")[1] == [b"1"]
    assert server.process.poll() is None


def test_account_rules_and_failed_login_limits(server):
    for bad in ["short@" + DOMAIN, "abcdefghi@other.org"]:
        with pytest.raises(imaplib.IMAP4.error):
            imaplib.IMAP4("127.0.0.1", server.port).login(bad, PASSWORD)
    with pytest.raises(imaplib.IMAP4.error):
        imaplib.IMAP4("127.0.0.1", server.port).login("newaccount@" + DOMAIN, "short")
    raw = server.raw()
    raw.until(b"\r\n")
    for tag in (b"a", b"b"):
        assert b"AUTHENTICATIONFAILED" in raw.command(tag + b" LOGIN " + USER.encode() + b" wrong")
    raw.send(b"c LOGIN " + USER.encode() + b" wrong\r\n")
    assert b"BYE Too many failed logins" in raw.until(b"logins\r\n")
    assert raw.closed()


def metadata_over_imap(port):
    """A fresh session's answer to Delta Chat's first GETMETADATA."""
    raw = RawClient(socket.create_connection(("127.0.0.1", port), timeout=10))
    raw.until(b"\r\n")
    raw.command(b"A0001 LOGIN " + USER.encode() + b" " + PASSWORD.encode())
    response = raw.command(
        b'A0002 GETMETADATA "" (/shared/vendor/deltachat/irohrelay /shared/vendor/deltachat/turn '
        b'/shared/vendor/deltachat/turns)')
    raw.sock.close()
    assert response.endswith(b"A0002 OK GETMETADATA completed\r\n"), response
    return response


class SupervisedIMAP:
    """chatmail-imap run by the real supervisor, beside fake TURN and iroh children."""

    port = 21143

    def __init__(self, supervisor_factory, tmp_path, turn_host="turn.example.org", plaintext_login=True,
                 lmtp_socket=None, tls_port=None, shadowsocks=None, auth_socket=None, supervisor_extra=""):
        """`shadowsocks`, the lines of a `[shadowsocks]` section, runs the real chatmail-shadowsocks on a free
        port (`shadowsocks_port`) too; without it that child is disabled."""
        self.tls_port, self.lmtp_port = tls_port or free_port(), free_port()
        self.lmtp_socket = lmtp_socket or f"{tmp_path}/run/lmtp.sock"
        self.shadowsocks_port = free_port() if shadowsocks is not None else None
        self.sup = supervisor_factory(
            modes={"imap": str(bin_dir() / "chatmail-imap"),
                   "shadowsocks": None if shadowsocks is None else str(bin_dir() / "chatmail-shadowsocks")},
            ports={"shadowsocks": self.shadowsocks_port} if shadowsocks is not None else None,
            supervisor_extra=supervisor_extra,
            extra={"shadowsocks": shadowsocks or [], "imap": [
                f'tls_listen = "127.0.0.1:{self.tls_port}"', f'lmtp_listen = "127.0.0.1:{self.lmtp_port}"',
                f'lmtp_socket = "{self.lmtp_socket}"', f'mail_domain = "{DOMAIN}"',
                f"plaintext_login = {'true' if plaintext_login else 'false'}",
                'comment = "Chatmail \\"test\\" server"', f'admin = "mailto:root@{DOMAIN}"',
                "password_iterations = 1000"] + ([f'auth_socket = "{auth_socket}"'] if auth_socket else [])})
        text = self.sup.config.read_text().replace('host = "turn.example.org"', f'host = "{turn_host}"')
        self.sup.config.write_text(text + '\n[tls]\nself_signed = true\nnames = ["localhost"]\n')
        self.sup.start()
        self.sup.wait_state("imap", "ready", timeout=30)
        if shadowsocks is not None:
            self.sup.wait_state("shadowsocks", "ready", timeout=30)
        self.state = tmp_path / "state"

    def turn_secret(self):
        with sqlite3.connect(self.state / "state.db") as db:
            return db.execute("SELECT secret FROM turn_secrets ORDER BY id DESC").fetchone()[0]


def test_discovery_from_the_supervisor_follows_enable_and_disable(supervisor_factory, tmp_path):
    """Under the real supervisor (fake TURN and iroh children): TURN and iroh entries appear,
    `chatmailctl disable turn` removes TURN from the next session, `enable turn` brings it back."""
    supervised = SupervisedIMAP(supervisor_factory, tmp_path)
    sup = supervised.sup
    port = 21143
    response = metadata_over_imap(port)
    turn = re.search(rb'/shared/vendor/deltachat/turn "turn\.example\.org:23478:(\d+):([A-Za-z0-9+/=]+)"', response)
    assert turn, response
    assert int(turn.group(1)) > time.time() + 86400
    # The password verifies against the supervisor's current secret (the IMAP child never has it).
    secret = supervised.turn_secret()
    expected = base64.b64encode(hmac.new(secret.encode(), turn.group(1), hashlib.sha1).digest())
    assert turn.group(2) == expected
    assert b'/shared/vendor/deltachat/irohrelay "http://127.0.0.1:23340"' in response
    sup.ctl("disable", "turn")
    sup.wait_state("turn", "disabled")
    response = metadata_over_imap(port)
    assert b"/shared/vendor/deltachat/turn" not in response and b"irohrelay" in response
    sup.ctl("enable", "turn")
    sup.wait_state("turn", "ready")
    assert b"/shared/vendor/deltachat/turn " in metadata_over_imap(port)


def test_turns_discovery_and_prefer_tls(supervisor_factory, tmp_path):
    """With a TLS listener (the [tls] development certificate), `turns` carries the same credential as `turn` on
    the TLS port; `prefer_tls = true`, applied by reload, makes `turn` hand out the TLS port too."""
    supervised = SupervisedIMAP(supervisor_factory, tmp_path)
    sup = supervised.sup
    value = rb'"turn\.example\.org:(\d+):(\d+):([A-Za-z0-9+/=]+)"'
    response = metadata_over_imap(SupervisedIMAP.port)
    turn = re.search(rb'/shared/vendor/deltachat/turn ' + value, response)
    turns = re.search(rb'/shared/vendor/deltachat/turns ' + value, response)
    assert turn and turns, response
    assert turn.group(1) == b"23478" and turns.group(1) == b"5349"
    assert turn.group(2, 3) == turns.group(2, 3)
    secret = supervised.turn_secret()
    assert turns.group(3) == base64.b64encode(hmac.new(secret.encode(), turns.group(2), hashlib.sha1).digest())

    sup.config.write_text(sup.config.read_text().replace('host = "turn.example.org"',
                                                         'host = "turn.example.org"\nprefer_tls = true'))
    sup.ctl("reload")
    response = metadata_over_imap(SupervisedIMAP.port)
    turn = re.search(rb'/shared/vendor/deltachat/turn ' + value, response)
    assert turn and turn.group(1) == b"5349", response
    assert re.search(rb'/shared/vendor/deltachat/turns "turn\.example\.org:5349:', response), response


def test_chatmailctl_user_commands(server):
    def ctl(*args, check=True):
        result = subprocess.run([str(bin_dir() / "chatmailctl"), "user", *args, "--config", str(server.config)],
                                capture_output=True, text=True, timeout=60)
        assert not check or result.returncode == 0, result.stderr
        return result

    # An operator account need not follow the first-login rules (a short localpart).
    assert "added" in ctl("add", "Admin@" + DOMAIN, "--password", "pw").stdout
    assert ctl("add", "admin@" + DOMAIN, "--password", "pw", check=False).returncode == 1
    assert ctl("add", "x@other.org", check=False).returncode == 1
    m = server.client()
    assert m.login("admin@" + DOMAIN, "pw")[0] == "OK"
    generated = ctl("passwd", "admin@" + DOMAIN).stdout.split("password: ")[1].split()[0]
    assert len(generated) == 24
    with pytest.raises(imaplib.IMAP4.error):
        server.client().login("admin@" + DOMAIN, "pw")
    assert server.client().login("admin@" + DOMAIN, generated)[0] == "OK"
    server.deliver(to=["admin@" + DOMAIN])
    listing = ctl("list").stdout
    assert listing.startswith("admin@example.org\t0.0 MB\tlast login "), listing
    assert "deleted" in ctl("del", "admin@" + DOMAIN).stdout
    assert ctl("del", "admin@" + DOMAIN, check=False).returncode == 1
    assert ctl("list").stdout == ""
    with pytest.raises(smtplib.SMTPRecipientsRefused):
        server.deliver(to=["admin@" + DOMAIN])


def test_sessions_per_account_are_limited(tmp_path):
    server = IMAPServer(tmp_path, extra="max_sessions_per_account = 2")
    try:
        first, second = server.client(), server.client()
        assert first.login(USER, PASSWORD)[0] == "OK" and second.login(USER, PASSWORD)[0] == "OK"
        with pytest.raises(imaplib.IMAP4.error, match="Too many sessions"):
            server.client().login(USER, PASSWORD)
        first.logout()
        wait_until(lambda: _logs_in(server), what="a freed session slot")
        second.logout()
        # Clients that vanish while their LOGIN runs do not keep slots.
        for _ in range(20):
            raw = server.raw()
            raw.until(b"\r\n")
            raw.send(b"a LOGIN " + USER.encode() + b" " + PASSWORD.encode() + b"\r\n")
            raw.sock.close()
        time.sleep(0.5)
        third, fourth = server.client(), server.client()
        wait_until(lambda: _logs_in_client(third), what="a slot after vanished logins")
        assert fourth.login(USER, PASSWORD)[0] == "OK"
    finally:
        server.stop()


def _logs_in_client(client):
    try:
        return client.login(USER, PASSWORD)[0] == "OK"
    except imaplib.IMAP4.error:
        return False


def _logs_in(server):
    try:
        server.client().login(USER, PASSWORD)
        return True
    except imaplib.IMAP4.error:
        return False


def test_failed_logins_per_source_address_are_limited(tmp_path):
    server = IMAPServer(tmp_path, extra="max_failed_logins_per_minute = 2")
    try:
        assert server.client().login(USER, PASSWORD)[0] == "OK"  # creates the account
        for _ in range(2):
            with pytest.raises(imaplib.IMAP4.error, match="AUTHENTICATIONFAILED"):
                server.client().login(USER, "wrong-password")
        # Even the right password is refused from this address for a while.
        with pytest.raises(imaplib.IMAP4.error, match="UNAVAILABLE"):
            server.client().login(USER, PASSWORD)
    finally:
        server.stop()


def test_examine_uid_expunge_unselect_and_friends(server):
    c = imapclient.IMAPClient("127.0.0.1", port=server.port, ssl=False)
    c.login(USER, PASSWORD)
    for _ in range(3):
        server.deliver()
    info = c.select_folder("INBOX", readonly=True)
    assert info[b"EXISTS"] == 3 and info[b"READ-ONLY"] == [b""]
    with pytest.raises(imapclient.exceptions.IMAPClientError):
        c.add_flags([1], [imapclient.DELETED])
    # Reading in EXAMINE does not set \Seen.
    c.fetch([1], ["BODY[]"])
    assert c.get_flags([1]) == {1: ()}
    c.unselect_folder()
    c.select_folder("INBOX")
    c.add_flags([1, 2, 3], [imapclient.DELETED])
    # UIDPLUS: COPYUID in COPY's OK, UID EXPUNGE.
    assert c.has_capability("UIDPLUS")
    c.create_folder("Copies")
    # imaplib keeps no tagged response code: read the tagged line of UID COPY itself.
    typ, data = c._imap._simple_command("UID", "COPY", "2:3", "Copies")
    assert typ == "OK" and data[0].startswith(b"[COPYUID ") and data[0].split()[2:4] == [b"2:3", b"1:2]"], data
    assert c._imap.uid("EXPUNGE", "2")[0] == "OK"
    assert c.search(["UID", "1:*"]) == [1, 3]
    assert c.search(["DELETED"]) == [1, 3]
    assert c._imap.check()[0] == "OK"
    assert c.folder_status("INBOX", ["MESSAGES"]) == {b"MESSAGES": 2}
    with pytest.raises(imapclient.exceptions.IMAPClientError):
        c.select_folder("Nope")
    c.create_folder("Old")
    assert c.delete_folder("Old")
    c.logout()


def test_idle_keepalive(tmp_path):
    server = IMAPServer(tmp_path, extra="idle_keepalive = 5")
    try:
        c = imapclient.IMAPClient("127.0.0.1", port=server.port, ssl=False)
        c.login(USER, PASSWORD)
        c.select_folder("INBOX")
        c.idle()
        started = time.monotonic()
        responses = c.idle_check(timeout=15)
        assert (b"OK", b"Still here") in responses, responses
        assert time.monotonic() - started < 12
        c.idle_done()
    finally:
        server.stop()


def test_random_input_over_the_network_never_kills_the_server(tmp_path):
    # The per-source failed-login limit has its own test; here mutated LOGINs must not trip it.
    server = IMAPServer(tmp_path, extra="max_failed_logins_per_minute = 100000")
    try:
        check_random_input(server)
    finally:
        server.stop()


def check_random_input(server):
    import random
    rng = random.Random(1234)
    # Create the account first: a mutated LOGIN that happened to be the first processed would
    # otherwise create it with a mutated password (accounts are made on first login).
    first = server.client()
    assert first.login(USER, PASSWORD)[0] == "OK"
    first.logout()
    valid = [b"a LOGIN " + USER.encode() + b" " + PASSWORD.encode(), b"b SELECT INBOX", b"c UID FETCH 1:* (FLAGS BODY.PEEK[])",
             b"d IDLE", b"DONE", b"e COMPRESS DEFLATE", b'f GETMETADATA "" (/shared/comment)', b"g LOGIN {5}", b"h STARTTLS"]
    for round in range(60):
        raw = server.raw()
        lines = [rng.choice(valid) for _ in range(rng.randint(1, 6))]
        data = bytearray(b"\r\n".join(lines) + b"\r\n")
        for _ in range(rng.randint(0, 6)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        if round % 4 == 0:
            data = bytearray(rng.randbytes(rng.randint(1, 3000)))
        try:
            raw.send(bytes(data))
            raw.sock.settimeout(0.2)
            raw.sock.recv(65536)
        except OSError:
            pass
        raw.sock.close()
    m = server.client()
    assert m.login(USER, PASSWORD)[0] == "OK" and m.select("INBOX")[0] == "OK"
    assert server.process.poll() is None
