#!/usr/bin/env python3
"""TLS figures (issue: TLS on system OpenSSL), measured on chatmail-tls-testserver, which is the
project's OpenSSLHandler in front of a trivial service:

- handshakes per server CPU-second (TLS 1.3, P-256 certificate, 2000 handshakes, 50 at a time);
- bulk MB per server CPU-second sending 1 GiB (TLS 1.2, ECDHE-ECDSA-AES128-GCM-SHA256);
- the limit beside it: `openssl speed -evp aes-128-gcm` on 16 KiB blocks, one core, same machine;
- the anchor: `openssl s_server` (OpenSSL's own server on a socket BIO) sending the same 1 GiB,
  fed from a pipe, measured the same way.

Server CPU time is read from /proc, so the client's own cost (Python, on the same two cores)
does not count against the server. The goal for bulk is at least 70% of the openssl figure.
"""

import asyncio
import os
import re
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "Tests" / "integration"))
from conftest import bin_dir  # noqa: E402
from test_tls import make_certificate  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def start(cert, key, mode):
    proc = subprocess.Popen([str(bin_dir() / "chatmail-tls-testserver"), "--identity", f"{cert}:{key}",
                             "--mode", mode], stdout=subprocess.PIPE, text=True)
    port = int(proc.stdout.readline().split()[1])
    threading.Thread(target=lambda: [None for _ in proc.stdout], daemon=True).start()
    return proc, port


def handshakes(cert, key, count=2000, parallel=50):
    proc, port = start(cert, key, "echo")
    context = ssl.create_default_context(cafile=str(cert))
    context.minimum_version = ssl.TLSVersion.TLSv1_3

    async def one(semaphore):
        async with semaphore:
            reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=context, server_hostname="bench.test")
            writer.close()

    async def run():
        semaphore = asyncio.Semaphore(parallel)
        await asyncio.gather(*(one(semaphore) for _ in range(count)))

    before = cpu_seconds(proc.pid)
    asyncio.run(run())
    used = cpu_seconds(proc.pid) - before
    proc.kill()
    return count / used


def receive(proc, port, cert, size, started=lambda: None):
    """Reads `size` bytes over TLS 1.2 AES-128-GCM from the server `proc` on `port` (calling `started` once
    connected); returns MB per server CPU-second."""
    context = ssl.create_default_context(cafile=str(cert))
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    context.set_ciphers("ECDHE-ECDSA-AES128-GCM-SHA256")

    async def connect():
        return await asyncio.open_connection("127.0.0.1", port, ssl=context, server_hostname="bench.test",
                                             limit=1 << 22)

    async def run():
        reader, writer = await wait_until_async(connect)
        started()
        count = 0
        while count < size and (data := await reader.read(1 << 22)):
            count += len(data)
        writer.close()
        return count

    before = cpu_seconds(proc.pid)
    count = asyncio.run(run())
    used = cpu_seconds(proc.pid) - before
    proc.kill()
    assert count == size, count
    return count / used / 1e6


def bulk(cert, key, size=1 << 30):
    """chatmail-tls-testserver sending `size` bytes."""
    proc, port = start(cert, key, f"source:{size}")
    return receive(proc, port, cert, size)


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def s_server_bulk(cert, key, size=1 << 30):
    """`openssl s_server` sending `size` bytes it reads from a pipe."""
    port = free_port()
    proc = subprocess.Popen(["openssl", "s_server", "-quiet", "-naccept", "1", "-cert", str(cert), "-key", str(key),
                             "-accept", f"127.0.0.1:{port}"], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL)

    def feed():
        block = b"a" * (1 << 16)
        try:
            for _ in range(size // len(block)):
                proc.stdin.write(block)
            proc.stdin.flush()
        except BrokenPipeError:
            pass

    return receive(proc, port, cert, size, started=lambda: threading.Thread(target=feed, daemon=True).start())


async def wait_until_async(connect, timeout=10.0):
    deadline = time.monotonic() + timeout
    while True:
        try:
            return await connect()
        except ConnectionRefusedError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.05)


def openssl_speed():
    out = subprocess.run(["openssl", "speed", "-evp", "aes-128-gcm", "-bytes", "16384", "-seconds", "3"],
                         capture_output=True, text=True).stdout
    line = next(l for l in out.splitlines() if l.lower().startswith("aes-128-gcm"))
    return float(re.findall(r"([\d.]+)k", line)[-1]) * 1000 / 1e6


def main():
    with tempfile.TemporaryDirectory() as tmp:
        cert, key = make_certificate(Path(tmp), "bench.test")
        per_cpu_handshakes = handshakes(cert, key)
        per_cpu_bulk = bulk(cert, key)
        anchor_bulk = s_server_bulk(cert, key)
    limit = openssl_speed()
    print(f"handshakes per server CPU-second (TLS 1.3, P-256):        {per_cpu_handshakes:8.0f}")
    print(f"bulk MB per server CPU-second (TLS 1.2 AES-128-GCM):      {per_cpu_bulk:8.0f}")
    print(f"openssl s_server bulk MB per server CPU-second (anchor):  {anchor_bulk:8.0f}")
    print(f"openssl speed -evp aes-128-gcm, 16 KiB blocks, one core:  {limit:8.0f} MB/s")
    print(f"bulk / openssl s_server:                                   {per_cpu_bulk / anchor_bulk:8.2f}x")
    print(f"bulk / openssl speed:                                      {per_cpu_bulk / limit:8.0%}  (goal: 70% or more)")
    print(f"openssl s_server / openssl speed:                          {anchor_bulk / limit:8.0%}")


if __name__ == "__main__":
    main()
