"""chatmail-iroh's HTTPS listener as the relay's port-443 front: ALPN `imap` to chatmail-imap's PROXY-v2 TLS
listener, `smtp` to Postfix's PROXY-v2 SMTPS service, everything else served as HTTPS; real clients (openssl
s_client, curl, Python's ssl) and bad ones (cut, plain HTTP, silent, 1000 half-open)."""

import json
import os
import socket
import ssl
import subprocess
import threading
import time
import urllib.error
import urllib.request

import pytest

from conftest import bin_dir, wait_until
from test_imap import DOMAIN, IMAPServer, free_port

PROXY_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"
DEADLINE = 2


def write_front_config(path, port, tls_port, imap_upstream=None, smtp_upstream=None, **extra):
    lines = ["[supervisor]", f'state_dir = "{path.parent}/front-state"', f'runtime_dir = "{path.parent}/run"',
             'log_level = "debug"', "[turn]", "enabled = false", "[shadowsocks]", "enabled = false", "[imap]",
             "enabled = false", f'mail_domain = "{DOMAIN}"', 'min_free_space = "0"', "[iroh]", f'listen = "127.0.0.1:{port}"', f'tls_listen = "127.0.0.1:{tls_port}"',
             f"handshake_timeout = {DEADLINE}", "rate_limit = 0"]
    if imap_upstream:
        lines.append(f'imap_upstream = "127.0.0.1:{imap_upstream}"')
    if smtp_upstream:
        lines.append(f'smtp_upstream = "127.0.0.1:{smtp_upstream}"')
    lines += [f"{key} = {value}" for key, value in extra.items()]
    lines += ["[tls]", "self_signed = true", 'names = ["localhost"]']
    path.write_text("\n".join(lines) + "\n")


class Front:
    """chatmail-iroh on its own, its HTTPS listener the front."""

    def __init__(self, tmp, **kwargs):
        self.port, self.tls_port = free_port(), free_port()
        self.config = tmp / "front.conf"
        self.log = tmp / "front.log"
        write_front_config(self.config, self.port, self.tls_port, **kwargs)
        self.proc = subprocess.Popen([str(bin_dir() / "chatmail-iroh"), "--config", str(self.config)],
                                     stdout=self.log.open("w"), stderr=subprocess.STDOUT)
        wait_until(self._listening, what="the front to listen")

    def _listening(self):
        assert self.proc.poll() is None, self.log.read_text()
        try:
            socket.create_connection(("127.0.0.1", self.tls_port), timeout=2).close()
            return True
        except OSError:
            return False

    def tls(self, alpn, source="127.0.0.1"):
        """A TLS connection through the front from `source`, asking for `alpn`."""
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        if alpn:
            context.set_alpn_protocols(alpn)
        sock = socket.create_connection(("127.0.0.1", self.tls_port), timeout=5, source_address=(source, 0))
        return context.wrap_socket(sock, server_hostname="localhost")

    def https(self, path, method="GET", port=None):
        """(status, content type, body) of a request to the front (or to `port` over plain HTTP)."""
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        url = f"http://127.0.0.1:{port}{path}" if port else f"https://localhost:{self.tls_port}{path}"
        request = urllib.request.Request(url, method=method, data=b"" if method == "POST" else None)
        try:
            with urllib.request.urlopen(request, context=None if port else context, timeout=5) as response:
                return response.status, response.headers.get("Content-Type"), response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.headers.get("Content-Type"), error.read()

    def stop(self):
        self.proc.terminate()
        assert self.proc.wait(10) == 0


class RecordingUpstream:
    """A TCP listener that keeps every byte of its first connection: it sends `greeting`, reads to the end
    (sleeping `read_delay` after each read, so that the front's queue fills), then sends `answer` and closes;
    `close_at_once`: closes right after the greeting instead."""

    def __init__(self, greeting=b"hello from upstream\r\n", answer=b"", read_delay=0, close_at_once=False):
        self.sock = socket.create_server(("127.0.0.1", 0))
        if read_delay:  # a small window, so that the front's kernel buffers fill too
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        self.port = self.sock.getsockname()[1]
        self.greeting, self.answer, self.read_delay = greeting, answer, read_delay
        self.close_at_once = close_at_once
        self.data = b""
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    @property
    def passed(self):
        """What the client sent, after the PROXY v2 header."""
        assert self.data[:12] == PROXY_SIGNATURE
        return self.data[16 + int.from_bytes(self.data[14:16], "big"):]

    def _run(self):
        self.sock.settimeout(10)
        try:
            connection, _ = self.sock.accept()
        except OSError:  # nothing was passed on (the bad-clients test expects that)
            return
        connection.settimeout(10)
        with connection:
            connection.sendall(self.greeting)
            if self.close_at_once:  # after taking what came (unread input would make the close a reset)
                connection.setblocking(False)
                try:
                    while chunk := connection.recv(65536):
                        self.data += chunk
                except BlockingIOError:
                    pass
                return
            while chunk := connection.recv(16384):
                self.data += chunk
                time.sleep(self.read_delay)
            connection.sendall(self.answer)


def hello(alpn: bytes) -> bytes:
    """A real ClientHello from openssl s_client asking for `alpn`, captured on a local socket."""
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    client = subprocess.Popen(["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-alpn", alpn.decode()],
                              stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    connection, _ = server.accept()
    connection.settimeout(1)
    data = b""
    try:
        while len(data) < 5 or len(data) < 5 + int.from_bytes(data[3:5], "big"):
            data += connection.recv(65536)
    finally:
        client.kill()
        client.wait()
        connection.close()
        server.close()
    return data


def closed_within(sock, seconds):
    """Whether the peer closes `sock` within `seconds` (reading and dropping whatever it sends)."""
    sock.settimeout(seconds)
    try:
        while sock.recv(65536):
            pass
        return True
    except (ConnectionResetError, BrokenPipeError):
        return True
    except (socket.timeout, TimeoutError):
        return False


def test_passed_connection_keeps_its_bytes_after_a_proxy_header(tmp_path):
    """ALPN imap goes to the upstream: a PROXY v2 header with the client's address (127.0.0.9), then every byte
    the client sent, split across many reads, exactly; the upstream's bytes come back."""
    upstream = RecordingUpstream()
    front = Front(tmp_path, imap_upstream=upstream.port)
    try:
        data = hello(b"imap") + bytes(range(256)) * 40
        sock = socket.create_connection(("127.0.0.1", front.tls_port), source_address=("127.0.0.9", 0), timeout=5)
        for start in range(0, len(data), 97):
            sock.sendall(data[start:start + 97])
            if start < 400:
                time.sleep(0.002)
        assert sock.recv(100) == b"hello from upstream\r\n"
        sock.close()
        upstream.thread.join(10)
        header = upstream.data[:28]
        assert header[:12] == PROXY_SIGNATURE and header[12:14] == b"\x21\x11" and header[14:16] == b"\x00\x0c"
        assert header[16:20] == bytes([127, 0, 0, 9]) and header[20:24] == bytes([127, 0, 0, 1])
        assert int.from_bytes(header[26:28], "big") == front.tls_port
        assert upstream.data[28:] == data
    finally:
        front.stop()


def read_to_end(sock, delay=0):
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
        time.sleep(delay)
    return data


def test_the_clients_fin_reaches_the_upstream_which_still_answers(tmp_path):
    """Half-close passes through: the client sends 2 MB and its FIN; the upstream, reading slowly, gets every
    byte and then the end of the stream, and its answer after that reaches the client in full."""
    upstream = RecordingUpstream(greeting=b"", answer=b"a" * (1 << 20), read_delay=0.001)
    front = Front(tmp_path, imap_upstream=upstream.port)
    try:
        data = hello(b"imap") + os.urandom(2 << 20)
        sock = socket.create_connection(("127.0.0.1", front.tls_port), timeout=20)
        sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)
        assert read_to_end(sock) == upstream.answer
        upstream.thread.join(10)
        assert upstream.passed == data
    finally:
        front.stop()


def test_a_client_that_closes_at_once_loses_none_of_its_data(tmp_path):
    """The client sends 8 MB and closes its socket at once; what the front still holds for the slowly reading
    upstream (more than the kernel buffers between them) goes out before the upstream's connection ends."""
    upstream = RecordingUpstream(greeting=b"", read_delay=0.001)
    front = Front(tmp_path, imap_upstream=upstream.port)
    try:
        data = hello(b"imap") + os.urandom(8 << 20)
        with socket.create_connection(("127.0.0.1", front.tls_port), timeout=20) as sock:
            sock.sendall(data)
        upstream.thread.join(20)
        assert upstream.passed == data
    finally:
        front.stop()


def test_the_upstreams_last_data_reaches_a_slow_client(tmp_path):
    """The upstream sends 4 MB and closes at once; the client, reading slowly, still gets all of it, then the
    end of the stream."""
    upstream = RecordingUpstream(greeting=os.urandom(4 << 20))
    front = Front(tmp_path, imap_upstream=upstream.port)
    try:
        sock = socket.create_connection(("127.0.0.1", front.tls_port), timeout=20)
        sock.sendall(hello(b"imap"))
        sock.shutdown(socket.SHUT_WR)
        time.sleep(0.5)
        assert read_to_end(sock, delay=0.001) == upstream.greeting
    finally:
        front.stop()


def test_a_client_that_reads_late_still_gets_everything(tmp_path):
    """The upstream sends 16 MB (more than the kernel buffers hold) and closes at once; the client reads nothing
    for longer than the front's linger (the handshake deadline), then gets all of it: the linger only starts once
    everything is handed to the kernel."""
    upstream = RecordingUpstream(greeting=os.urandom(16 << 20), close_at_once=True)
    front = Front(tmp_path, imap_upstream=upstream.port)
    try:
        sock = socket.create_connection(("127.0.0.1", front.tls_port), timeout=20)
        sock.sendall(hello(b"imap"))
        time.sleep(2 * DEADLINE + 1)
        assert read_to_end(sock) == upstream.greeting
    finally:
        front.stop()


def test_a_client_that_never_finishes_is_closed_after_the_linger(tmp_path):
    """The upstream finished and the client got everything and the FIN, but keeps its own side open (and keeps
    sending): the front closes the connection after its linger (the handshake deadline)."""
    upstream = RecordingUpstream(greeting=b"bye", close_at_once=True)
    front = Front(tmp_path, imap_upstream=upstream.port)
    try:
        sock = socket.create_connection(("127.0.0.1", front.tls_port), timeout=20)
        sock.sendall(hello(b"imap"))
        assert read_to_end(sock) == b"bye"
        upstream.thread.join(10)
        deadline = time.monotonic() + DEADLINE + 8
        with pytest.raises((ConnectionResetError, BrokenPipeError)):
            while time.monotonic() < deadline:
                sock.sendall(b"x")
                time.sleep(0.2)
    finally:
        front.stop()


@pytest.fixture
def imap_behind_front(tmp_path):
    proxy_port = free_port()
    imap = IMAPServer(tmp_path, extra=f'proxy_tls_listen = "127.0.0.1:{proxy_port}"\nmax_failed_logins_per_minute = 3')
    front = Front(tmp_path, imap_upstream=proxy_port)
    yield imap, front
    front.stop()
    imap.stop()


def imap_command(sock, line):
    sock.sendall(line + b"\r\n")
    tag = line.split(b" ")[0]
    data = b""
    while not any(l.startswith(tag + b" ") for l in data.split(b"\r\n")):
        chunk = sock.recv(65536)
        assert chunk, data
        data += chunk
    return data


def test_openssl_alpn_imap_gets_the_imap_greeting_and_curl_the_site(imap_behind_front):
    imap, front = imap_behind_front
    client = subprocess.Popen(
        ["openssl", "s_client", "-connect", f"127.0.0.1:{front.tls_port}", "-alpn", "imap", "-quiet"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        line = client.stdout.readline()
        assert line.startswith(b"* OK [CAPABILITY IMAP4rev1"), line
    finally:
        client.kill()
        client.wait()
    curl = subprocess.run(["curl", "-sk", "-o", "/dev/null", "-w", "%{http_code} %{http_version}",
                           f"https://localhost:{front.tls_port}/generate_204"], capture_output=True, text=True,
                          timeout=20)
    assert curl.stdout == "204 1.1", curl


def test_imap_sees_the_real_client_address(imap_behind_front):
    """Logins through the front count against the client's address (127.0.0.9), not the front's: after three
    failures 127.0.0.9 is refused while 127.0.0.10, also through the front, logs in; IMAP's log names it."""
    imap, front = imap_behind_front
    user, password = f"frontuser@{DOMAIN}".encode(), b"password123"
    with front.tls(["imap"], "127.0.0.9") as sock:
        assert sock.recv(4096).startswith(b"* OK")
        assert b"a OK" in imap_command(sock, b"a LOGIN " + user + b" " + password)
    for n in range(3):  # a session is closed after a failed login
        with front.tls(["imap"], "127.0.0.9") as sock:
            assert sock.recv(4096).startswith(b"* OK")
            assert b" NO " in imap_command(sock, b"b LOGIN " + user + b" wrongpassword")
    with front.tls(["imap"], "127.0.0.9") as sock:
        assert sock.recv(4096).startswith(b"* OK")
        assert b"UNAVAILABLE" in imap_command(sock, b"c LOGIN " + user + b" " + password)
    with front.tls(["imap"], "127.0.0.10") as sock:
        assert sock.recv(4096).startswith(b"* OK")
        assert b"d OK" in imap_command(sock, b"d LOGIN " + user + b" " + password)
    wait_until(lambda: f"IMAP login frontuser@{DOMAIN} from 127.0.0.9" in imap.output(), what="the login log line")
    assert "from 127.0.0.1\n" not in imap.output()


def test_the_proxy_listener_refuses_connections_without_a_header(imap_behind_front):
    imap, front = imap_behind_front
    port = int(imap.config.read_text().split('proxy_tls_listen = "127.0.0.1:')[1].split('"')[0])
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    sock.sendall(hello(b"imap"))
    assert closed_within(sock, 5)


def test_the_proxy_listener_reads_a_version_1_header_as_nginx_sends_it(imap_behind_front):
    """An operator's nginx (`proxy_protocol on` speaks only v1) may stand in front of IMAP too: the text header's
    address is the one IMAP logs and limits."""
    imap, front = imap_behind_front
    port = int(imap.config.read_text().split('proxy_tls_listen = "127.0.0.1:')[1].split('"')[0])
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    sock.sendall(b"PROXY TCP4 127.0.0.77 127.0.0.1 40000 443\r\n")
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with context.wrap_socket(sock, server_hostname="localhost") as tls:
        assert tls.recv(4096).startswith(b"* OK")
        assert b"a OK" in imap_command(tls, f"a LOGIN nginxuser@{DOMAIN} password123".encode())
    wait_until(lambda: f"IMAP login nginxuser@{DOMAIN} from 127.0.0.77" in imap.output(), what="the login log line")


def test_alpn_smtp_reaches_postfix_with_the_client_address(tmp_path):
    from postfix_instance import Postfix, available
    from test_tls import make_certificate

    if not available():
        pytest.skip("needs root and Debian's postfix")
    certificate = make_certificate(tmp_path, "localhost")
    postfix = Postfix(DOMAIN, free_port(), free_port(), free_port(), certificate)
    # Postfix's smtpd needs the SASL socket (its login service) to start a session.
    imap = IMAPServer(tmp_path, extra=f'auth_socket = "{postfix.auth_socket}"')
    postfix.start()
    try:
        front = Front(tmp_path, smtp_upstream=postfix.front_port)
        try:
            client = subprocess.Popen(
                ["openssl", "s_client", "-connect", f"127.0.0.1:{front.tls_port}", "-alpn", "smtp", "-quiet"],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
            try:
                line = client.stdout.readline()
                assert line.startswith(b"220 "), (line, postfix.log()[-3000:])
            finally:
                client.kill()
                client.wait()
            with front.tls(["smtp"], "127.0.0.9") as sock:
                assert sock.recv(4096).startswith(b"220 ")
                sock.sendall(b"EHLO client.example\r\n")
                assert b"250" in sock.recv(4096)
            wait_until(lambda: "connect from unknown[127.0.0.9]" in postfix.log(), what="Postfix to log 127.0.0.9")
            # `chatmailctl doctor`'s "front smtp" step gets Postfix's banner through the front (with no supervisor
            # here, other steps fail; only this one is looked at).
            result = subprocess.run([str(bin_dir() / "chatmailctl"), "doctor", "--json", "--config", str(front.config),
                                     "--imap-host", "localhost", "--timeout", "2"],
                                    capture_output=True, text=True, timeout=120)
            steps = {s["step"]: s for s in json.loads(result.stdout)["steps"] if s["service"] == "iroh"}
            smtp = steps.get("front smtp")
            assert smtp and smtp["verdict"] == "warn" and "ALPN smtp: SMTP banner" in smtp["detail"], result.stdout
        finally:
            front.stop()
    finally:
        postfix.stop()
        imap.stop()


def test_bad_clients_are_closed_by_the_deadline_and_others_are_served(tmp_path):
    upstream = RecordingUpstream()
    front = Front(tmp_path, imap_upstream=upstream.port, max_connections_per_source=0)
    try:
        whole = hello(b"imap")
        started = time.monotonic()
        # Plain HTTP on the TLS port, and garbage: closed at once.
        for data in (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", b"\x80\x2e\x01\x03\x01" + b"\x00" * 40):
            sock = socket.create_connection(("127.0.0.1", front.tls_port), timeout=5)
            sock.sendall(data)
            assert closed_within(sock, 1), data
        # A ClientHello cut short, silence, and 1000 half-open connections: closed by the deadline.
        cut = socket.create_connection(("127.0.0.1", front.tls_port), timeout=5)
        cut.sendall(whole[:len(whole) // 2])
        silent = socket.create_connection(("127.0.0.1", front.tls_port), timeout=5)
        half_open = []
        for n in range(1000):
            sock = socket.create_connection(("127.0.0.1", front.tls_port), timeout=5)
            sock.sendall(whole[:n % len(whole)])
            half_open.append(sock)
        # Others are served meanwhile.
        curl = subprocess.run(["curl", "-sk", "-o", "/dev/null", "-w", "%{http_code}",
                               f"https://localhost:{front.tls_port}/generate_204"], capture_output=True, text=True,
                              timeout=20)
        assert curl.stdout == "204"
        for sock in [cut, silent] + half_open:
            assert closed_within(sock, max(0.1, started + DEADLINE + 5 - time.monotonic()))
            sock.close()
        assert front.proc.poll() is None
        assert upstream.data == b""
    finally:
        front.stop()


def test_new_gives_accounts_that_log_in_through_the_front(imap_behind_front):
    imap, front = imap_behind_front
    status, kind, body = front.https("/new", "POST")
    assert status == 200 and kind == "application/json", body
    account = json.loads(body)
    assert account["email"].endswith("@" + DOMAIN) and len(account["email"].split("@")[0]) == 9
    with front.tls(["imap"], "127.0.0.9") as sock:
        assert sock.recv(4096).startswith(b"* OK")
        login = b"a LOGIN " + account["email"].encode() + b" " + account["password"].encode()
        assert b"a OK" in imap_command(sock, login)
    # Only over HTTPS: the plain listener has no /new.
    assert front.https("/new", "POST", port=front.port)[0] != 200


def test_new_is_refused_while_creation_is_closed_and_rate_limited(tmp_path):
    front = Front(tmp_path, new_accounts_per_hour=3)
    try:
        nocreate = tmp_path / "front-state" / "nocreate"
        nocreate.write_text("")
        status, _, body = front.https("/new", "POST")
        assert status == 503 and "reason" in json.loads(body)
        nocreate.unlink()
        for _ in range(3):
            assert front.https("/new", "POST")[0] == 200
        status, _, body = front.https("/new", "POST")
        assert status == 429 and "Too many" in json.loads(body)["reason"]
    finally:
        front.stop()


def test_autoconfig_site_root_and_invite(tmp_path):
    front = Front(tmp_path)
    try:
        for path in ("/.well-known/autoconfig/mail/config-v1.1.xml", "/mail/config-v1.1.xml"):
            status, kind, body = front.https(path)
            assert status == 200 and kind.startswith("application/xml"), path
            for port in (b"993", b"143", b"465", b"587"):
                assert b"<port>" + port + b"</port>" in body
            assert b"<hostname>" + DOMAIN.encode() + b"</hostname>" in body
        link = f"dcaccount:https://{DOMAIN}:{front.tls_port}/new"
        status, kind, body = front.https("/")
        assert status == 200 and kind.startswith("text/html") and link.encode() in body
        assert b"<script" not in body and b"src=" not in body
        ctl = [str(bin_dir() / "chatmailctl"), "invite", "--config", str(front.config)]
        assert subprocess.run(ctl, capture_output=True, text=True, timeout=30).stdout == link + "\n"
        qr = subprocess.run(ctl + ["--qr"], capture_output=True, text=True, timeout=30).stdout
        assert qr.startswith(link + "\n") and len(qr.splitlines()) > 10 and "█" in qr
    finally:
        front.stop()


def post_new(sock, count=1):
    """Writes `count` keep-alive `POST /new` requests at once (pipelined); returns the statuses and bodies of the
    answers that come before the server closes (or stops answering for 5 s)."""
    sock.sendall(b"POST /new HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\n\r\n" * count)
    answers, data = [], b""
    sock.settimeout(5)
    while len(answers) < count:
        while b"\r\n\r\n" not in data:
            try:
                chunk = sock.recv(65536)
            except (socket.timeout, TimeoutError, ConnectionResetError):
                chunk = b""
            if not chunk:
                return answers
            data += chunk
        head, data = data.split(b"\r\n\r\n", 1)
        length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
        while len(data) < length:
            chunk = sock.recv(65536)
            assert chunk, head
            data += chunk
        answers.append((int(head.split(b" ")[1]), json.loads(data[:length])))
        data = data[length:]
    return answers


def test_new_flood_from_one_source_hits_the_limit_and_others_are_served(tmp_path):
    """A flood of POST /new from one source (keep-alive, pipelined, 100 connections from 4 threads) gets exactly
    `new_accounts_per_hour` credentials (distinct; /new creates no account, the first login does) and 429 for the
    rest; a 429 closes the connection; other sources are still served, each with its own allowance."""
    limit = 4
    front = Front(tmp_path, new_accounts_per_hour=limit)
    try:
        # Keep-alive: one request at a time on one connection, answered 200 up to the limit, then 429 and closed.
        with front.tls(["http/1.1"], "127.0.0.20") as sock:
            answers = [post_new(sock)[0] for _ in range(limit + 1)]
            assert [status for status, _ in answers] == [200] * limit + [429]
            assert post_new(sock) == []
        # Pipelined, from another source: the same from one write of many requests.
        with front.tls(["http/1.1"], "127.0.0.21") as sock:
            pipelined = post_new(sock, 3 * limit)
            assert [status for status, _ in pipelined] == [200] * limit + [429]
        # The flood: many connections from the first source, all refused.
        statuses = []

        def flood():
            for _ in range(25):
                with front.tls(["http/1.1"], "127.0.0.20") as sock:
                    statuses.extend(status for status, _ in post_new(sock))

        threads = [threading.Thread(target=flood) for _ in range(4)]
        for thread in threads:
            thread.start()
        # Meanwhile another source is served.
        with front.tls(None, "127.0.0.22") as sock:
            assert post_new(sock)[0][0] == 200
        for thread in threads:
            thread.join(30)
        assert len(statuses) == 100 and set(statuses) == {429}
        emails = [body["email"] for status, body in answers + pipelined if status == 200]
        assert len(set(emails)) == 2 * limit
        assert all(set(body) == {"reason"} for status, body in answers + pipelined if status == 429)
        assert front.proc.poll() is None
    finally:
        front.stop()
