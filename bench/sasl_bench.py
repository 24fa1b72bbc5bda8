"""SASL logins per second through the Dovecot auth socket, chatmail-imap beside Dovecot's own auth
service (Debian's dovecot-core, passwd-file, its default password scheme), one run, same machine:
20 clients speaking the protocol as Postfix does (one connection each, AUTH PLAIN with `secured`
and an initial response, the next request when the answer is in). While that load runs, idle IMAP
sessions of the same server send NOOP in turn: their p50/p99 latency shows whether the event loop
waits for password hashing. The cost of one password check in each scheme is measured here too.

    CHATMAIL_BIN_DIR=.build/release python3 bench/sasl_bench.py [--seconds 5] [--clients 20] [--idle 50]
"""

import argparse
import asyncio
import base64
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import crypt

sys.path.insert(0, str(Path(__file__).resolve().parent))
import imap_bench  # noqa: E402
from imap_bench import PASSWORD, USERS  # noqa: E402

PBKDF2_ITERATIONS = 20000  # chatmail-imap's default password_iterations


def wait_path(path, timeout=30):
    deadline = time.monotonic() + timeout
    while not os.path.exists(path):
        if time.monotonic() > deadline:
            raise RuntimeError(f"{path} did not appear")
        time.sleep(0.1)


class Ours(imap_bench.Ours):
    scheme = f"PBKDF2-SHA256, {PBKDF2_ITERATIONS} iterations"

    def __init__(self, work: Path):
        self.auth_socket = str(work / "run" / "auth")
        super().__init__(work, extra=f'auth_socket = "{self.auth_socket}"\npassword_iterations = {PBKDF2_ITERATIONS}')
        wait_path(self.auth_socket)

    @staticmethod
    def check_cost():
        salt = os.urandom(16)
        return timed(lambda: hashlib.pbkdf2_hmac("sha256", PASSWORD.encode(), salt, PBKDF2_ITERATIONS))


class Dovecot(imap_bench.Dovecot):
    scheme = "?"

    def __init__(self, work: Path):
        # The hash `doveadm pw` makes by default (Dovecot 2.3: CRYPT, that is bcrypt with cost 5).
        hashed = subprocess.run(["doveadm", "pw", "-p", PASSWORD], check=True, capture_output=True,
                                text=True).stdout.strip()
        Dovecot.hash = hashed.split("}", 1)[1]
        Dovecot.scheme = f"{hashed.split('}')[0][1:]} ({Dovecot.hash[:7]}...)"
        self.auth_socket = str(work / "run" / "auth-client-bench")
        super().__init__(work, hashed=hashed, extra="service auth {\n  unix_listener auth-client-bench {\n"
                                                    "    mode = 0666\n  }\n}")
        wait_path(self.auth_socket)

    @staticmethod
    def check_cost():
        return timed(lambda: crypt.crypt(PASSWORD, Dovecot.hash))


def timed(function, rounds=50):
    function()
    started = time.perf_counter()
    for _ in range(rounds):
        function()
    return (time.perf_counter() - started) / rounds * 1000


async def sasl_client(path, user, deadline, counts):
    reader, writer = await asyncio.open_unix_connection(path)
    writer.write(b"VERSION\t1\t0\nCPID\t%d\n" % os.getpid())
    while (await reader.readline()).rstrip(b"\n") != b"DONE":
        pass
    response = base64.b64encode(b"\0" + user.encode() + b"\0" + PASSWORD.encode())
    request = 0
    while time.monotonic() < deadline:
        request += 1
        writer.write(b"AUTH\t%d\tPLAIN\tservice=smtp\tnologin\tlip=127.0.0.1\trip=127.0.0.1\tsecured\tresp=%s\n"
                     % (request, response))
        line = await reader.readline()
        if not line.startswith(b"OK\t%d\tuser=" % request):
            raise RuntimeError(f"unexpected answer: {line!r}")
        counts[0] += 1
    writer.close()


async def idle_sessions(port, sessions, ready, stop, latencies):
    """`sessions` logged-in IMAP sessions (`ready` set once all are in) sending NOOP in turn until `stop`
    is set; latencies in ms."""
    connections = []
    for index in range(sessions):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        await reader.readline()
        writer.write(f"A1 LOGIN {USERS[index % len(USERS)]} {PASSWORD}\r\n".encode())
        while not (await reader.readline()).startswith(b"A1 "):
            pass
        connections.append((reader, writer))
    ready.set()
    tag = 1
    while not stop.is_set():
        for reader, writer in connections:
            tag += 1
            started = time.perf_counter()
            writer.write(b"N%d NOOP\r\n" % tag)
            while not (await reader.readline()).startswith(b"N%d " % tag):
                pass
            latencies.append((time.perf_counter() - started) * 1000)
            await asyncio.sleep(0.01)
    for _, writer in connections:
        writer.close()


async def run(server, seconds, clients, idle):
    counts = [0]
    latencies = []
    # The idle sessions log in first; the SASL load starts once they are in.
    ready, stop = asyncio.Event(), asyncio.Event()
    idle_task = asyncio.create_task(idle_sessions(server.port, idle, ready, stop, latencies))
    await ready.wait()
    await asyncio.sleep(1)
    latencies.clear()
    started = time.monotonic()
    deadline = started + seconds
    await asyncio.gather(*(sasl_client(server.auth_socket, USERS[i % len(USERS)], deadline, counts)
                           for i in range(clients)))
    elapsed = time.monotonic() - started
    during = list(latencies)
    stop.set()
    await idle_task
    during.sort()

    def percentile(p):
        return during[min(len(during) - 1, int(len(during) * p))] if during else float("nan")

    return {"SASL logins/s": counts[0] / elapsed, "NOOP p50 ms": percentile(0.50),
            "NOOP p99 ms": percentile(0.99)}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--idle", type=int, default=50)
    args = parser.parse_args()
    if shutil.which("dovecot") is None or os.geteuid() != 0:
        sys.exit("needs root and Debian's dovecot-core (make test-deps)")
    results, costs = {}, {}
    for kind in (Ours, Dovecot):
        work = Path(tempfile.mkdtemp(prefix="sasl-bench-", dir="/var/tmp"))
        server = kind(work)
        try:
            print(f"{kind.name}: running", file=sys.stderr, flush=True)
            results[kind.name] = asyncio.run(run(server, args.seconds, args.clients, args.idle))
            costs[kind.name] = (kind.scheme, kind.check_cost())
        finally:
            server.stop()
            shutil.rmtree(work, ignore_errors=True)
    print(f"{args.clients} SASL clients as Postfix speaks, {args.idle} idle IMAP sessions sending NOOP meanwhile, "
          f"{os.cpu_count()} CPUs")
    for name, (scheme, cost) in costs.items():
        print(f"  {name}: password check {scheme}, {cost:.2f} ms per check on one core")
    ours, theirs = results["chatmail-imap"], results["dovecot"]
    print(f"{'':24}{'chatmail-imap':>15}{'dovecot':>12}")
    for key in ours:
        print(f"{key:24}{ours[key]:15.1f}{theirs[key]:12.1f}")


if __name__ == "__main__":
    main()
