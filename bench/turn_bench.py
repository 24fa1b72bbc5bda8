#!/usr/bin/env python3
"""TURN figures (issue 7), chatmail-turn and coturn's turnserver side by side in one run, same
machine, same load from coturn's turnutils_uclient against a turnutils_peer echo on loopback:

- server CPU microseconds per relayed packet at a fixed 10,000 round trips/s (50 clients, one
  200-byte message every 5 ms each, over channels); every round trip is two relayed packets;
- the highest rate with under 1% loss, raising the number of unpaced-as-possible clients
  (one message per millisecond each) until loss passes 1%;
- resident memory with 10,000 allocations (made by a small Python client, two round trips each).

Server CPU time comes from /proc, so the clients' cost (on the same cores) is not counted.
Ratios are ours / coturn's: below 1 is better for CPU and memory, above 1 for the peak rate.
"""

import os
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "Tests" / "integration"))
from conftest import bin_dir  # noqa: E402
from test_turn import free_port  # noqa: E402
from turn_stun import attr, msg, parse, rest  # noqa: E402

SECRET = "bench-secret"
REALM = "bench.local"
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def rss_mib(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def raise_fd_limit():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def wait_for_binding(port, process, timeout=20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.settimeout(0.2)
        try:
            sock.sendto(msg(0x0001, os.urandom(12), []), ("127.0.0.1", port))
            sock.recv(2000)
            return
        except OSError:
            time.sleep(0.1)
        finally:
            sock.close()
    raise RuntimeError("server did not answer Binding")


def start_ours(tmp, port):
    config = tmp / "turn.conf"
    config.write_text(f"""
[supervisor]
state_dir = "{tmp}/state"
log_level = "warning"
[turn]
listen = "127.0.0.1:{port}"
tls_listen = "127.0.0.1:{free_port()}"
host = "127.0.0.1"
realm = "{REALM}"
relay_ports = "40000-59999"
allowed_peers = ["127.0.0.1"]
secret = "{SECRET}"
max_allocations_per_user = 100000
max_allocations_per_address = 100000
bandwidth_limit = 0
[iroh]
enabled = false
""")
    env = {k: v for k, v in os.environ.items() if k != "CHATMAIL_CONTROL_FD"}
    process = subprocess.Popen([str(bin_dir() / "chatmail-turn"), "--config", str(config)],
                               stdout=subprocess.DEVNULL, stderr=open(tmp / "ours.log", "w"), env=env,
                               preexec_fn=raise_fd_limit)
    wait_for_binding(port, process)
    return process


def start_coturn(tmp, port):
    process = subprocess.Popen(
        ["turnserver", "-n", "--listening-ip=127.0.0.1", "--relay-ip=127.0.0.1", f"--listening-port={port}",
         "--use-auth-secret", f"--static-auth-secret={SECRET}", f"--realm={REALM}", "--allow-loopback-peers",
         "--no-cli", "--no-tls", "--no-dtls", "--min-port=40000", "--max-port=59999", "--no-software-attribute",
         f"--log-file={tmp}/coturn.log", "--simple-log", f"--pidfile={tmp}/coturn.pid"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, preexec_fn=raise_fd_limit)
    wait_for_binding(port, process)
    return process


def uclient(port, peer, clients, messages, interval_ms, timeout=120):
    args = ["turnutils_uclient", "-W", SECRET, "-p", str(port), "-e", "127.0.0.1", "-r", str(peer),
            "-m", str(clients), "-l", "200", "-n", str(messages), "-z", str(interval_ms), "-c", "127.0.0.1"]
    try:
        output = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                timeout=timeout).stdout
    except subprocess.TimeoutExpired as expired:
        output = expired.stdout.decode() if isinstance(expired.stdout, bytes) else (expired.stdout or "")
    sent = re.findall(r"tot_send_msgs=(\d+), tot_recv_msgs=(\d+)\n", output)
    elapsed = re.search(r"Total transmit time is (\d+)", output)
    if not sent:
        print("  uclient failed:", " | ".join(output.strip().splitlines()[-3:]), flush=True)
        return 0, 0, 0
    total, received = map(int, sent[-1])
    return total, received, int(elapsed.group(1)) if elapsed else 0


def fixed_rate(pid, port, peer):
    """10,000 round trips/s for about 10 s: 50 clients x 200 messages/s x 2000 messages (uclient
    paces by sleeping, so on a busy machine the real rate is lower; it is the same for both)."""
    before = cpu_seconds(pid)
    sent, received, seconds = uclient(port, peer, 50, 2000, 5)
    cpu = cpu_seconds(pid) - before
    relayed = 2 * received
    return {"sent": sent, "received": received, "seconds": seconds, "cpu": cpu,
            "us_per_packet": cpu / relayed * 1e6 if relayed else float("nan")}


def peak_rate(port, peer, name):
    """Raises the client count (each sending a message per millisecond, as far as uclient keeps up)
    until loss passes 1%; the best round-trip rate below that, by uclient's transmit time, and whether
    loss ever passed 1% (if not, the load generator, not the server, set the limit)."""
    best = 0.0
    for clients in (10, 20, 40, 80, 120, 160, 200, 240):
        sent, received, seconds = uclient(port, peer, clients, 1000, 1, timeout=90)
        if sent == 0:  # uclient could not start (a port it wanted was taken): once more
            sent, received, seconds = uclient(port, peer, clients, 1000, 1, timeout=90)
        loss = (sent - received) / sent if sent else 1.0
        rate = received / max(seconds, 1)
        print(f"  {name}: {clients} clients: {received}/{sent} in {seconds} s, loss {loss:.2%}", flush=True)
        if loss > 0.01:
            return best, True
        best = max(best, rate)
    return best, False


def ask(sock, request, server, attempts=4):
    """Sends `request` until an answer comes, as a STUN client retransmits (our server rate-limits the 401s
    to one source address, and these all come from 127.0.0.1)."""
    for _ in range(attempts):
        sock.sendto(request, server)
        try:
            return parse(sock.recv(2000))
        except socket.timeout:
            continue
    raise socket.timeout("no answer")


def allocations_rss(pid, port, count=10_000):
    """Makes `count` allocations from as many UDP sockets (two round trips each), then reads RSS."""
    raise_fd_limit()
    baseline = rss_mib(pid)
    user, _, key = rest(SECRET, REALM, 3600)
    sockets = []
    server = ("127.0.0.1", port)
    done = 0
    # Client ports below the kernel's ephemeral range and the relay range, so they never collide.
    for client_port in range(20000, 20000 + count):
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.settimeout(0.5)
        try:
            sock.bind(("127.0.0.1", client_port))
        except OSError:
            sock.close()
            continue
        sockets.append(sock)
        try:
            _, attributes = ask(sock, msg(0x0003, os.urandom(12), [attr(0x0019, b"\x11\0\0\0")]), server)
            nonce = attributes.get(0x0015)
            if nonce is None:
                continue
            request = msg(0x0003, os.urandom(12), [attr(0x0019, b"\x11\0\0\0"), attr(0x0006, user.encode()),
                                                   attr(0x0014, REALM.encode()), attr(0x0015, nonce)], key)
            if ask(sock, request, server)[0] == 0x0103:
                done += 1
        except OSError:
            pass
    time.sleep(1)
    rss = rss_mib(pid)
    for sock in sockets:
        sock.close()
    return {"allocations": done, "rss": rss, "baseline": baseline}


def main():
    for tool in ("turnserver", "turnutils_uclient", "turnutils_peer"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} is missing: apt install coturn")
    tmp = Path(tempfile.mkdtemp(prefix="turn-bench-"))
    peer_port = free_port(both=False)
    peer = subprocess.Popen(["turnutils_peer", "-L", "127.0.0.1", "-p", str(peer_port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    results = {}
    try:
        for name, start in (("chatmail-turn", start_ours), ("coturn", start_coturn)):
            port = free_port()
            server = start(tmp, port)
            try:
                uclient(port, peer_port, 5, 50, 5)  # warm up
                fixed = fixed_rate(server.pid, port, peer_port)
                peak, lossy = peak_rate(port, peer_port, name)
                memory = allocations_rss(server.pid, port)
            finally:
                server.send_signal(signal.SIGTERM)
                try:
                    server.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    server.kill()
                    server.wait()
            results[name] = (fixed, peak, memory, lossy)
            # Sockets of the servers and clients just closed linger; let them go before the next server.
            time.sleep(2)
            print(f"{name}: fixed rate: {fixed['received']}/{fixed['sent']} echoed in {fixed['seconds']} s, "
                  f"server CPU {fixed['cpu']:.2f} s = {fixed['us_per_packet']:.2f} us/relayed packet; "
                  f"peak under 1% loss {peak:,.0f} rt/s{'' if lossy else ' (no loss at the most uclient sends)'}; "
                  f"RSS {memory['rss']:.1f} MiB with "
                  f"{memory['allocations']} allocations (idle {memory['baseline']:.1f} MiB)", flush=True)
    finally:
        peer.kill()
        peer.wait()
    ours, theirs = results["chatmail-turn"], results["coturn"]
    print(f"ratios ours/coturn: CPU per relayed packet {ours[0]['us_per_packet'] / theirs[0]['us_per_packet']:.2f} "
          f"(goal <= 0.5), peak rate {ours[1] / theirs[1]:.2f} (higher is better"
          f"{'' if ours[3] or theirs[3] else '; both at the load generator limit, not the servers'}), "
          f"RSS with 10k allocations {ours[2]['rss'] / theirs[2]['rss']:.2f}")


if __name__ == "__main__":
    main()
