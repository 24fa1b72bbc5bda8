#!/usr/bin/env python3
"""The /metrics scrape (issue 16): with the development bundle (all four real children) and 10,000 live TURN
allocations, the time to answer GET /metrics (median and max of 50 scrapes, one at a time) and the supervisor's
CPU time per scrape (user + system from /proc over those scrapes, divided by their number; the TURN child's too,
as it sums the counters of every engine). No anchor: coturn's exporter is not comparable (it keeps its counters
in-process); the figures stand alone. Uses the development ports: not while `make run` or the integration tests
run.
"""

import os
import resource
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "Tests" / "integration"))
from conftest import wait_until  # noqa: E402
import test_bundle  # noqa: E402
from turn_stun import attr, msg, parse, turn_from_imap  # noqa: E402

ALLOCATIONS = int(os.environ.get("METRICS_BENCH_ALLOCATIONS", "10000"))
SCRAPES = 50
METRICS = "http://127.0.0.1:19465/metrics"


def cpu_seconds(pid):
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def allocate_many(count, port, user, password):
    """`count` allocations from as many UDP sockets (each its own 5-tuple), in batches of 500."""
    import hashlib
    import socket
    key = hashlib.md5(f"{user}:localhost:{password}".encode()).digest()
    sockets = []
    batch = 500
    for start in range(0, count, batch):
        group = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(min(batch, count - start))]
        for index, s in enumerate(group):
            # Spread over 127.0.0.2-101: TURN answers at most 200 unauthenticated requests per second per source.
            s.bind((f"127.0.0.{2 + index % 100}", 0))
            s.settimeout(10)
            s.sendto(msg(0x0003, os.urandom(12), [attr(0x0019, b"\x11\0\0\0")]), ("127.0.0.1", port))
        nonces = [parse(s.recv(2000))[1][0x0015] for s in group]
        for s, nonce in zip(group, nonces):
            attrs = [attr(0x0019, b"\x11\0\0\0"), attr(0x0006, user.encode()), attr(0x0014, b"localhost"),
                     attr(0x0015, nonce)]
            s.sendto(msg(0x0003, os.urandom(12), attrs, key), ("127.0.0.1", port))
        for s in group:
            mtype, attributes = parse(s.recv(2000))
            assert mtype == 0x0103, attributes
        sockets += group
    return sockets


def scrape():
    with urllib.request.urlopen(METRICS, timeout=30) as response:
        return response.read().decode()


def main():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        # The development configuration, with room for 10,000 allocations of one credential from one address.
        original = test_bundle.ROOT / "supervisor.conf"
        text = original.read_text().replace(
            "max_allocations_per_user = 1000",
            f"max_allocations_per_user = {ALLOCATIONS + 100}\nmax_allocations_per_address = {ALLOCATIONS + 100}")
        text = text.replace('log_level = "info"', 'log_level = "warning"')
        test_bundle.ROOT = tmp  # start_bundle reads ROOT / "supervisor.conf"
        (tmp / "supervisor.conf").write_text(text)
        run = tmp / "run"
        run.mkdir()
        proc = test_bundle.start_bundle(run)
        try:
            wait_until(lambda: all(s["state"] == "ready" for s in proc.states().values()), timeout=60,
                       what="all four children ready")
            turn_pid = proc.states()["turn"]["pid"]
            _, port, user, password = turn_from_imap(1143, "benchmark@localhost", "a-long-enough-password-1")
            started = time.monotonic()
            sockets = allocate_many(ALLOCATIONS, port, user, password)
            made = time.monotonic() - started
            assert f"chatmail_turn_total_allocations {ALLOCATIONS}\n" in scrape()

            times = []
            cpu_before, turn_before = cpu_seconds(proc.pid), cpu_seconds(turn_pid)
            for _ in range(SCRAPES):
                begin = time.monotonic()
                text = scrape()
                times.append(time.monotonic() - begin)
            cpu = (cpu_seconds(proc.pid) - cpu_before) / SCRAPES
            turn_cpu = (cpu_seconds(turn_pid) - turn_before) / SCRAPES
            print(f"metrics scrape, 4 children, {ALLOCATIONS} TURN allocations live (made in {made:.1f} s), "
                  f"{len(text)} bytes, {text.count(chr(10))} lines:")
            print(f"  answer time: median {statistics.median(times) * 1000:.1f} ms, max {max(times) * 1000:.1f} ms "
                  f"({SCRAPES} scrapes)")
            print(f"  CPU per scrape: supervisor {cpu * 1000:.2f} ms, TURN child {turn_cpu * 1000:.2f} ms")
            for s in sockets:
                s.close()
        finally:
            test_bundle.stop_bundle(proc)


if __name__ == "__main__":
    main()
