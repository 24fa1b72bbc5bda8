#!/usr/bin/env python3
"""Shadowsocks figures (issue 6), chatmail-shadowsocks side by side with ss-server (shadowsocks-libev), same
machine, one run, the same load through ss-local:

- MB relayed per server CPU-second, aes-256-gcm and chacha20-ietf-poly1305: 256 MiB up and 256 MiB down
  through ss-local (SOCKS5) to a loopback sink/source, one stream at a time;
- new connections per server CPU-second: connect, request with 100 bytes, echo, close, with the spec-based
  client in Tests/integration/ssclient.py (aes-256-gcm).

Server CPU is user+system time from /proc, so the clients' cost on the same cores does not count. The goal
is twice libev's relayed MB per CPU-second or more.
"""

import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "Tests" / "integration"))
import ssclient  # noqa: E402
from test_shadowsocks import NAME, EchoService, Server, free_port, socks_connect, ss_local, stop  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")
SIZE = int(os.environ.get("SS_BENCH_MIB", "256")) << 20
CONNECTIONS = int(os.environ.get("SS_BENCH_CONNECTIONS", "2000"))
BLOCK = b"\0" * (1 << 18)


def cpu_seconds(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


class Service:
    """Port `sink`: reads and drops until EOF. Port `source`: sends SIZE bytes, then closes."""

    def __init__(self):
        self.sink = self._listen(self._drain)
        self.source = self._listen(self._send)

    def _listen(self, serve):
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        sock.listen(64)

        def accept():
            while True:
                conn, _ = sock.accept()
                threading.Thread(target=serve, args=(conn,), daemon=True).start()

        threading.Thread(target=accept, daemon=True).start()
        return sock.getsockname()[1]

    @staticmethod
    def _drain(conn):
        with conn:
            while conn.recv(1 << 20):
                pass

    @staticmethod
    def _send(conn):
        with conn:
            remaining = SIZE
            while remaining > 0:
                conn.sendall(BLOCK[: min(remaining, len(BLOCK))])
                remaining -= len(BLOCK)


def relay(local_port, host, sink_port, source_port):
    """Up then down through ss-local; returns the bytes moved."""
    sock = socks_connect(local_port, host, sink_port)
    remaining = SIZE
    while remaining > 0:
        sock.sendall(BLOCK[: min(remaining, len(BLOCK))])
        remaining -= len(BLOCK)
    sock.shutdown(socket.SHUT_WR)
    sock.settimeout(60)
    sock.recv(1)  # the end, once the sink has it all
    sock.close()
    sock = socks_connect(local_port, host, source_port)
    got = 0
    while data := sock.recv(1 << 20):
        got += len(data)
    sock.close()
    assert got == SIZE, f"downloaded {got} of {SIZE}"
    return 2 * SIZE


def ss_server(method, key, port):
    process = subprocess.Popen(
        ["ss-server", "-s", "127.0.0.1", "-p", str(port), "-k", key, "-m", method, "-t", "60"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return process


def measure(name, pid, server_port, method, key, host, sink_port, source_port):
    local, local_port = ss_local(server_port, key, method)
    try:
        before = cpu_seconds(pid)
        started = time.monotonic()
        moved = relay(local_port, host, sink_port, source_port)
        elapsed = time.monotonic() - started
        cpu = cpu_seconds(pid) - before
    finally:
        stop(local)
    rate = moved / 1e6 / max(cpu, 1e-3)
    print(f"  {name:22} {moved / 1e6 / elapsed:8.1f} MB/s wall  {cpu:6.2f} server CPU-s  {rate:8.1f} MB/CPU-s")
    return rate


def connections(name, pid, address, target):
    before = cpu_seconds(pid)
    started = time.monotonic()
    for _ in range(CONNECTIONS):
        client = ssclient.Client(address, "aes-256-gcm", "bench-key-0123", target, b"x" * 100)
        assert len(client.recv_exactly(100)) == 100
        client.close()
    elapsed = time.monotonic() - started
    cpu = cpu_seconds(pid) - before
    rate = CONNECTIONS / max(cpu, 1e-3)
    print(f"  {name:22} {CONNECTIONS / elapsed:8.0f} conn/s wall  {cpu:6.2f} server CPU-s  {rate:8.0f} conn/CPU-s")
    return rate


def main():
    tmp = Path(tempfile.mkdtemp(prefix="ss-bench-"))
    service = Service()
    echo = EchoService()
    ratios = {}
    for method in ["aes-256-gcm", "chacha20-ietf-poly1305"]:
        key = "bench-key-0123"
        print(f"{method}: {SIZE >> 20} MiB up + {SIZE >> 20} MiB down through ss-local")
        # Ours reaches the sink as NAME:993 and the source as NAME:465; libev is told the real ports.
        ours = Server(tmp, method, key, service.sink, service.source)
        try:
            our_rate = measure("chatmail-shadowsocks", ours.process.pid, ours.port, method, key, NAME, 993, 465)
        finally:
            ours.stop()
        port = free_port()
        libev = ss_server(method, key, port)
        try:
            time.sleep(0.5)
            libev_rate = measure(
                "ss-server (libev)", libev.pid, port, method, key, "127.0.0.1", service.sink, service.source)
        finally:
            stop(libev)
        ratios[method] = our_rate / libev_rate
        print(f"  ratio: {ratios[method]:.2f}x libev's MB per server CPU-second")

    print(f"aes-256-gcm: {CONNECTIONS} connections (connect, 100-byte request, echo, close)")
    ours = Server(tmp, "aes-256-gcm", "bench-key-0123", echo.port, service.source)
    try:
        our_rate = connections("chatmail-shadowsocks", ours.process.pid, ours.address, ssclient.address(NAME, 993))
    finally:
        ours.stop()
    port = free_port()
    libev = ss_server("aes-256-gcm", "bench-key-0123", port)
    try:
        time.sleep(0.5)
        target = ssclient.address(socket.inet_aton("127.0.0.1"), echo.port)
        libev_rate = connections("ss-server (libev)", libev.pid, ("127.0.0.1", port), target)
    finally:
        stop(libev)
    print(f"  ratio: {our_rate / libev_rate:.2f}x libev's connections per server CPU-second")
    print("summary: " + ", ".join(f"{m} {r:.2f}x" for m, r in ratios.items())
          + f", connections {our_rate / libev_rate:.2f}x")


if __name__ == "__main__":
    main()
