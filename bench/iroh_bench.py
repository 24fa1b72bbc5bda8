#!/usr/bin/env python3
"""iroh relay figures (issue 5), measured on chatmail-iroh (release build) with synthetic clients written from the
protocol notes (Tests/integration/iroh_clients/rawrelay.py), all on loopback:

- packets per second and MB/s of 1200-byte datagrams through the relay, sender to receiver, with 1 and with 100
  client pairs, family W (iroh-relay v2, iroh 1.x) and family L (iroh derp http, iroh 0.35);
- the limit beside it: the same records over plain loopback TCP, sender to receiver, no relay;
- added latency: round trips of one 1200-byte datagram A -> relay -> B -> relay -> A against the same ping-pong
  over a direct loopback TCP connection (p50 / p99);
- memory per idle authenticated connection (relay RSS growth over 1000 connections).

No public relay figures exist to compare with (notes §9), so ours are stated against the plain-TCP limit. The
clients are Python on the same two cores, so these are lower bounds for the relay; its CPU time is read from
/proc and shown beside the rates.
"""

import os
import resource
import socket
import struct
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve()
sys.path.insert(0, str(HERE.parents[1] / "Tests" / "integration"))
sys.path.insert(0, str(HERE.parents[1] / "Tests" / "integration" / "iroh_clients"))
from rawrelay import LegacyStream, WebSocket  # noqa: E402
from test_iroh import Relay  # noqa: E402

DATAGRAM = 1200
DURATION = 3.0
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def rss_kib(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def masked(payload):
    """A client WebSocket binary frame (mask of zeros: valid, and cheap to repeat)."""
    header = bytes([0x82, 0x80 | 126]) + struct.pack(">H", len(payload)) if len(payload) < 65536 else None
    return header + bytes(4) + payload


class Pair:
    """A sender and a receiver authenticated on the relay, in one family."""

    def __init__(self, port, family):
        if family == "W":
            self.receiver, self.sender = WebSocket(port), WebSocket(port)
            self.receiver.authenticate()
            self.sender.authenticate()
            frame = masked(bytes([4]) + self.receiver.key.public + bytes([0]) + bytes(DATAGRAM))
            self.record = 4 + 1 + 32 + 1 + DATAGRAM  # what the receiver gets per datagram
        else:
            self.receiver, self.sender = LegacyStream(port), LegacyStream(port)
            self.receiver.client_info()
            self.sender.client_info()
            frame = struct.pack(">BI", 4, 32 + DATAGRAM) + self.receiver.key.public + bytes(DATAGRAM)
            self.record = 5 + 32 + DATAGRAM
        self.batch = frame * 32
        time.sleep(0.05)


class DirectPair:
    """The limit: the same records over one plain loopback TCP connection."""

    def __init__(self, listener):
        self.sender = socket.create_connection(listener.getsockname())
        self.receiver_sock, _ = listener.accept()
        self.record = 5 + 32 + DATAGRAM
        self.batch = bytes(self.record) * 32


def flood(pairs, sock_of, receiver_of):
    """Sends for DURATION seconds on every pair at once; returns (datagrams received, bytes received, seconds)."""
    received = [0] * len(pairs)
    stop = threading.Event()
    start = time.monotonic()

    def send(pair):
        sock = sock_of(pair)
        sock.settimeout(30)
        try:
            while not stop.is_set():
                sock.sendall(pair.batch)
        except OSError as error:
            print(f"  sender stopped: {error!r}", file=sys.stderr)

    def receive(index, pair):
        sock = receiver_of(pair)
        sock.settimeout(0.5)
        buffer = bytearray(1 << 18)
        while True:
            try:
                count = sock.recv_into(buffer)
            except (socket.timeout, TimeoutError):
                if stop.is_set():
                    return
                continue
            if not count:
                return
            received[index] += count

    threads = [threading.Thread(target=send, args=(p,), daemon=True) for p in pairs]
    threads += [threading.Thread(target=receive, args=(i, p), daemon=True) for i, p in enumerate(pairs)]
    for thread in threads:
        thread.start()
    time.sleep(DURATION)
    stop.set()
    for thread in threads:
        thread.join(30)
    elapsed = time.monotonic() - start
    total = sum(received)
    return total // pairs[0].record, total, elapsed


def relay_throughput(tmp, family, count):
    relay = Relay(tmp / f"{family}{count}", rate_limit=0, max_connections=20000)
    try:
        pairs = [Pair(relay.port, family) for _ in range(count)]
        before = cpu_seconds(relay.proc.pid)
        datagrams, total, elapsed = flood(pairs, lambda p: p.sender.sock, lambda p: p.receiver.sock)
        cpu = cpu_seconds(relay.proc.pid) - before
        dropped = relay.counters()["packets_dropped_queue_full"]
        for pair in pairs:
            pair.sender.close()
            pair.receiver.close()
        return datagrams / elapsed, total / elapsed / 1e6, cpu / elapsed, dropped
    finally:
        relay.stop()


def direct_throughput(count):
    listener = socket.create_server(("127.0.0.1", 0), backlog=256)
    pairs = [DirectPair(listener) for _ in range(count)]
    datagrams, total, elapsed = flood(pairs, lambda p: p.sender, lambda p: p.receiver_sock)
    for pair in pairs:
        pair.sender.close()
        pair.receiver_sock.close()
    listener.close()
    return datagrams / elapsed, total / elapsed / 1e6


def percentile(values, fraction):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


def relay_latency(tmp, rounds=2000):
    relay = Relay(tmp / "latency", rate_limit=0)
    try:
        a, b = WebSocket(relay.port), WebSocket(relay.port)
        a.authenticate()
        b.authenticate()
        to_b = masked(bytes([4]) + b.key.public + bytes([0]) + bytes(DATAGRAM))
        to_a = masked(bytes([4]) + a.key.public + bytes([0]) + bytes(DATAGRAM))
        for sock in (a.sock, b.sock):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def echo():
            for _ in range(rounds):
                b.recv()
                b.sock.sendall(to_a)

        thread = threading.Thread(target=echo, daemon=True)
        thread.start()
        samples = []
        for _ in range(rounds):
            started = time.perf_counter()
            a.sock.sendall(to_b)
            a.recv()
            samples.append(time.perf_counter() - started)
        thread.join(5)
        return samples
    finally:
        relay.stop()


def direct_latency(rounds=2000):
    listener = socket.create_server(("127.0.0.1", 0))
    a = socket.create_connection(listener.getsockname())
    b, _ = listener.accept()
    record = 5 + 32 + DATAGRAM
    for sock in (a, b):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def read(sock):
        data = b""
        while len(data) < record:
            data += sock.recv(record - len(data))
        return data

    def echo():
        for _ in range(rounds):
            b.sendall(read(b))

    thread = threading.Thread(target=echo, daemon=True)
    thread.start()
    samples = []
    payload = bytes(record)
    for _ in range(rounds):
        started = time.perf_counter()
        a.sendall(payload)
        read(a)
        samples.append(time.perf_counter() - started)
    thread.join(5)
    for sock in (a, b, listener):
        sock.close()
    return samples


def memory_per_connection(tmp, count=1000):
    relay = Relay(tmp / "memory", rate_limit=0, max_connections=20000)
    try:
        time.sleep(0.3)
        before = rss_kib(relay.proc.pid)
        connections = []
        for _ in range(count):
            connection = WebSocket(relay.port)
            connection.authenticate()
            connections.append(connection)
        time.sleep(0.5)
        after = rss_kib(relay.proc.pid)
        assert relay.counters()["relay_sessions"] == count
        for connection in connections:
            connection.close()
        return (after - before) * 1024 / count
    finally:
        relay.stop()


def main():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 65536)), hard))
    with tempfile.TemporaryDirectory() as directory:
        tmp = Path(directory)
        print(f"iroh relay bench: {DATAGRAM}-byte datagrams, {DURATION:.0f} s per run, loopback, 2 cores shared")
        for count in (1, 100):
            limit_rate, limit_mb = direct_throughput(count)
            print(f"  {count:3} pair(s)  plain loopback TCP (limit): {limit_rate:10,.0f} datagrams/s  {limit_mb:7.1f} MB/s")
            for family, name in (("W", "iroh-relay v2 (1.x)"), ("L", "iroh derp http (0.35)")):
                rate, mb, cpu, dropped = relay_throughput(tmp, family, count)
                print(f"  {count:3} pair(s)  relay {name:22}: {rate:10,.0f} datagrams/s  {mb:7.1f} MB/s"
                      f"  = {rate / limit_rate:5.2f}x the limit; relay CPU {cpu:4.2f} cores;"
                      f" {dropped:,} dropped at full queues")
        relay = relay_latency(tmp)
        direct = direct_latency()
        p50, p99 = percentile(relay, 0.5) * 1e6, percentile(relay, 0.99) * 1e6
        d50, d99 = percentile(direct, 0.5) * 1e6, percentile(direct, 0.99) * 1e6
        print(f"  round trip via relay: p50 {p50:7.0f} us  p99 {p99:7.0f} us;"
              f" direct TCP: p50 {d50:7.0f} us  p99 {d99:7.0f} us;"
              f" added per round trip (two relay hops): p50 {p50 - d50:6.0f} us  p99 {p99 - d99:6.0f} us")
        per_connection = memory_per_connection(tmp)
        print(f"  memory per idle authenticated connection (1000, iroh-relay v2): {per_connection / 1024:5.1f} KiB")


if __name__ == "__main__":
    main()
