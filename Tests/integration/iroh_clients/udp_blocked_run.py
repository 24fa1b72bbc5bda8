"""Runs inside a fresh network namespace (`unshare -n`): brings up loopback, drops all UDP with nftables (so iroh
cannot take a direct path), starts the relay, runs one real-client script against it, and prints one JSON line
{"udp_blocked": bool, "client": {...}, "health": {...}}.

Usage: udp_blocked_run.py RELAY_BIN CONFIG PORT PYTHON CLIENT_SCRIPT SIZE [IDLE [URL CAFILE]]

PORT is the relay's plain listener. With URL (the HTTPS front, e.g. https://127.0.0.1:3443) the client gets URL,
TCP to PORT is dropped too (so the front is the only way in), and /ping and /healthz are asked at URL, verifying
its certificate against CAFILE.
"""

import json
import socket
import ssl
import subprocess
import sys
import time
import urllib.request


def udp_blocked():
    """Whether a datagram to ourselves on loopback is dropped."""
    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    receiver.bind(("127.0.0.1", 0))
    receiver.settimeout(0.3)
    socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b"x", receiver.getsockname())
    try:
        receiver.recv(10)
        return False
    except socket.timeout:
        return True


def main(relay_bin, config, port, python, client, size, idle="0", url=None, cafile=None):
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    rules = [["add", "table", "inet", "f"],
             ["add", "chain", "inet", "f", "in", "{ type filter hook input priority 0; policy accept; }"],
             ["add", "rule", "inet", "f", "in", "meta", "l4proto", "udp", "drop"]]
    if url:
        rules.append(["add", "rule", "inet", "f", "in", "tcp", "dport", port, "drop"])
    for rule in rules:
        subprocess.run(["nft", *rule], check=True)
    relay = subprocess.Popen([relay_bin, "--config", config], stdout=sys.stderr, stderr=sys.stderr)
    url = url or f"http://127.0.0.1:{port}"
    context = ssl.create_default_context(cafile=cafile) if cafile else None
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                urllib.request.urlopen(url + "/ping", timeout=1, context=context)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        run = subprocess.run([python, client, url, str(size), idle], capture_output=True, text=True,
                             timeout=90 + float(idle))
        sys.stderr.write(run.stderr[-4000:])
        lines = [line for line in run.stdout.splitlines() if line.startswith("{")]
        result = json.loads(lines[-1]) if lines else {"ok": False, "error": "no output", "stdout": run.stdout[-2000:]}
        health = json.loads(urllib.request.urlopen(url + "/healthz", timeout=2, context=context).read())
        print(json.dumps({"udp_blocked": udp_blocked(), "client": result, "health": health}), flush=True)
    finally:
        relay.terminate()
        relay.wait(10)


if __name__ == "__main__":
    main(*sys.argv[1:6], int(sys.argv[6]), *sys.argv[7:10])
