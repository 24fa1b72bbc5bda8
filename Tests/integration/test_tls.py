"""OpenSSLHandler against real TLS peers: openssl s_client, Python ssl, curl."""

import asyncio
import hashlib
import os
import resource
import shutil
import signal
import socket
import ssl
import subprocess
import threading
import time
from pathlib import Path

import pytest

from conftest import bin_dir, wait_until


def make_certificate(directory: Path, name: str, *names: str):
    """A self-signed P-256 certificate for `name` (and `names`) made with the openssl CLI."""
    cert, key = directory / f"{name}.pem", directory / f"{name}.key"
    san = ",".join(f"DNS:{n}" for n in (name, *names))
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-keyout", key, "-out", cert, "-days", "2", "-subj", f"/CN={name}", "-addext",
                    f"subjectAltName={san}"], check=True, capture_output=True)
    return cert, key


class TLSServer:
    def __init__(self, tmp: Path, identities, alpn=None, mode="echo"):
        cmd = [str(bin_dir() / "chatmail-tls-testserver"), "--mode", mode]
        for cert, key in identities:
            cmd += ["--identity", f"{cert}:{key}"]
        if alpn:
            cmd += ["--alpn", ",".join(alpn)]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
        self.lines = []
        threading.Thread(target=self._read, daemon=True).start()
        self.port = int(wait_until(lambda: [l for l in self.lines if l.startswith("LISTENING")],
                                   what="the server")[0].split()[1])

    def _read(self):
        for line in self.proc.stdout:
            self.lines.append(line.strip())

    def matching(self, prefix):
        return [l for l in self.lines if l.startswith(prefix)]

    def fds(self):
        return len(os.listdir(f"/proc/{self.proc.pid}/fd"))

    def rss_kib(self):
        with open(f"/proc/{self.proc.pid}/status") as f:
            return int(next(l.split()[1] for l in f if l.startswith("VmRSS")))

    def stop(self):
        self.proc.kill()
        self.proc.wait()


@pytest.fixture
def certs(tmp_path):
    return {"a": make_certificate(tmp_path, "a.test", "*.a.test"), "b": make_certificate(tmp_path, "b.test")}


@pytest.fixture
def server_factory(tmp_path):
    servers = []

    def make(identities, **kwargs):
        server = TLSServer(tmp_path, identities, **kwargs)
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.stop()


def client_context(cafile, alpn=None, version=None):
    context = ssl.create_default_context(cafile=str(cafile))
    if alpn:
        context.set_alpn_protocols(alpn)
    if version:
        context.minimum_version = context.maximum_version = version
    return context


def echo_once(port, context, name, payload=b"hello"):
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with context.wrap_socket(raw, server_hostname=name) as tls:
            tls.sendall(payload)
            data = b""
            while len(data) < len(payload):
                data += tls.recv(65536)
            return tls.selected_alpn_protocol(), data


def s_client_echo(port, *args):
    """openssl s_client: send a line, return what comes back (the echo) once it has."""
    proc = subprocess.Popen(["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-quiet", *args],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        proc.stdin.write(b"ping\n")
        proc.stdin.flush()
        return proc.stdout.readline()
    finally:
        proc.kill()
        proc.wait()


@pytest.mark.parametrize("version", ["-tls1_2", "-tls1_3"])
def test_openssl_s_client_with_alpn_and_sni(server_factory, certs, version):
    server = server_factory([certs["a"], certs["b"]], alpn=["http/1.1", "imap"])
    answer = s_client_echo(server.port, "-servername", "x.a.test", "-alpn", "imap", version,
                           "-CAfile", str(certs["a"][0]), "-verify_return_error")
    assert answer == b"ping\n"
    # The server logs on stdout, read by a thread: the echo can arrive before the log line.
    assert wait_until(lambda: server.matching("HANDSHAKE"), what="the handshake in the log") == [
        f"HANDSHAKE alpn=imap sni=x.a.test version={'TLSv1.2' if version == '-tls1_2' else 'TLSv1.3'}"]


def test_sni_picks_the_certificate_and_unknown_names_get_the_first(server_factory, certs):
    server = server_factory([certs["a"], certs["b"]])
    for name, expected in [("b.test", "b.test"), ("sub.a.test", "a.test"), ("other.example", "a.test")]:
        result = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{server.port}", "-servername", name],
                                input=b"", capture_output=True, timeout=10)
        assert f"subject=CN = {expected}" in result.stdout.decode(), (name, result.stdout[-400:])


def test_old_protocols_are_refused(server_factory, certs):
    server = server_factory([certs["a"]])
    result = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{server.port}", "-tls1_1"],
                            input=b"", capture_output=True, timeout=10)
    assert result.returncode != 0
    wait_until(lambda: server.matching("ERROR TLS handshake failed"), what="the refusal in the log")


def test_python_ssl_both_versions_and_alpn(server_factory, certs):
    server = server_factory([certs["a"]], alpn=["http/1.1"])
    for version in [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3]:
        alpn, data = echo_once(server.port, client_context(certs["a"][0], ["http/1.1"], version), "a.test")
        assert data == b"hello" and alpn == "http/1.1"
    alpn, data = echo_once(server.port, client_context(certs["a"][0], ["h2"]), "a.test")
    assert alpn is None and data == b"hello", "no common protocol: no ALPN, no failure"


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed (make test-deps installs it)")
def test_curl(server_factory, certs):
    server = server_factory([certs["a"]], alpn=["http/1.1"], mode="http")
    result = subprocess.run(["curl", "-sS", "--http1.1", "--cacert", str(certs["a"][0]), "--resolve",
                             f"a.test:{server.port}:127.0.0.1", f"https://a.test:{server.port}/"],
                            capture_output=True, text=True, timeout=10)
    assert result.stdout == "ok\n", result.stderr
    assert server.matching("HANDSHAKE alpn=http/1.1 sni=a.test")


def test_256_mib_each_way_with_checksums(server_factory, certs):
    """Through the echo server: 256 MiB up and the same 256 MiB back, at the same time."""
    server = server_factory([certs["a"]])
    size = 256 * 1024 * 1024
    chunk = os.urandom(1024 * 1024)

    async def run():
        # asyncio's TLS runs on one thread; Python's blocking SSLSocket must not read and write
        # from two threads at once.
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port, ssl=client_context(certs["a"][0]),
                                                       server_hostname="a.test", limit=1 << 20)
        sent, received = hashlib.sha256(), hashlib.sha256()

        async def send():
            for i in range(size // len(chunk)):
                piece = chunk[i % 7:] + chunk[:i % 7]
                sent.update(piece)
                writer.write(piece)
                await writer.drain()

        sender = asyncio.create_task(send())
        count = 0
        while count < size:
            data = await reader.read(1 << 20)
            assert data, f"closed early after {count} bytes: {server.lines}"
            received.update(data)
            count += len(data)
        await sender
        writer.close()
        return count, sent.hexdigest(), received.hexdigest()

    count, sent, received = asyncio.run(asyncio.wait_for(run(), 300))
    assert count == size and received == sent


def test_slow_reader_does_not_make_the_server_buffer(server_factory, certs):
    total = 256 * 1024 * 1024
    server = server_factory([certs["a"]], mode=f"source:{total}")
    before = server.rss_kib()
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as raw:
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
        with client_context(certs["a"][0]).wrap_socket(raw, server_hostname="a.test") as tls:
            tls.recv(1024)
            time.sleep(2)  # the reader stalls while the server has 256 MiB to send
            grown = server.rss_kib() - before
            count = 1024
            while True:
                data = tls.recv(1 << 20)
                if not data:
                    break
                count += len(data)
    assert grown < 32 * 1024, f"server grew by {grown} KiB while the reader stalled"
    assert count >= total - 1024 * 1024


def test_a_thousand_concurrent_handshakes(server_factory, certs):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 8192), hard))
    server = server_factory([certs["a"]])
    context = client_context(certs["a"][0])

    async def one(i):
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port, ssl=context,
                                                       server_hostname="a.test")
        writer.write(b"%d\n" % i)
        line = await reader.readline()
        writer.close()
        return line == b"%d\n" % i

    async def all_of_them():
        return await asyncio.gather(*(one(i) for i in range(1000)))

    assert all(asyncio.run(asyncio.wait_for(all_of_them(), 120)))
    wait_until(lambda: len(server.matching("HANDSHAKE")) >= 1000, what="1000 handshakes in the log")
    assert len(server.matching("HANDSHAKE")) == 1000


def test_garbage_stalls_and_resets_close_cleanly_without_leaking(server_factory, certs):
    server = server_factory([certs["a"]])
    echo_once(server.port, client_context(certs["a"][0]), "a.test")
    time.sleep(0.3)
    baseline = server.fds()
    # Garbage instead of a ClientHello.
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" * 10)
        assert s.recv(1024)[:1] in (b"\x15", b""), "an alert or a close, nothing else"
        assert s.recv(1024) == b"", "the server closed the connection"
    # Half a ClientHello, then EOF: the server closes its side too.
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as s:
        s.sendall(bytes.fromhex("16030100a5010000a10303") + os.urandom(20))
        s.shutdown(socket.SHUT_WR)
        while s.recv(1024):
            pass
    # A reset mid-handshake.
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as s:
        s.sendall(bytes.fromhex("16030100a5010000a10303") + os.urandom(20))
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    wait_until(lambda: len(server.matching("ERROR")) >= 3, what="one log line per broken connection")
    wait_until(lambda: server.fds() == baseline, timeout=5, what=f"fds back to {baseline} (now {server.fds()})")
    assert echo_once(server.port, client_context(certs["a"][0]), "a.test")[1] == b"hello"


def test_starttls_drops_plaintext_injected_after_the_command(server_factory, certs):
    server = server_factory([certs["a"]], mode="starttls")
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as raw:
        file = raw.makefile("rb")
        assert file.readline() == b"* OK\r\n"
        raw.sendall(b"HELLO\r\n")
        assert file.readline() == b"PLAIN HELLO\r\n"
        raw.sendall(b"STARTTLS\r\nINJECTED\r\n")  # the classic injection: one packet
        assert file.readline() == b"OK begin TLS\r\n"
        with client_context(certs["a"][0]).wrap_socket(raw, server_hostname="a.test") as tls:
            tls.sendall(b"AFTER\r\n")
            answer = tls.recv(1024)
    assert answer == b"TLS AFTER\r\n", answer
    wait_until(lambda: server.matching("HANDSHAKE"), what="the handshake in the log")


def test_certificate_reload_keeps_open_connections(server_factory, certs, tmp_path):
    cert, key = certs["a"]
    server = server_factory([(cert, key)])
    context = client_context(cert)
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as raw:
        with context.wrap_socket(raw, server_hostname="a.test") as old:
            old.sendall(b"before")
            assert old.recv(100) == b"before"
            # A broken new certificate is refused; the old one stays.
            cert.write_text("not a certificate")
            server.proc.send_signal(signal.SIGHUP)
            assert "certificate" in wait_until(lambda: server.matching("RELOAD FAILED"), what="refusal")[0]
            assert echo_once(server.port, context, "a.test")[1] == b"hello"
            # A new certificate applies to new connections.
            (tmp_path / "new").mkdir()
            new_cert, new_key = make_certificate(tmp_path / "new", "a.test")
            shutil.copy(new_cert, cert)
            shutil.copy(new_key, key)
            server.proc.send_signal(signal.SIGHUP)
            wait_until(lambda: server.matching("RELOADED"), what="reload")
            with pytest.raises(ssl.SSLCertVerificationError):
                echo_once(server.port, context, "a.test")
            assert echo_once(server.port, client_context(cert), "a.test")[1] == b"hello"
            old.sendall(b"after")
            assert old.recv(100) == b"after", "the open connection goes on with its certificate"
