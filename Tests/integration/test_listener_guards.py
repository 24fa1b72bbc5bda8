"""The guards every listener of every child has (ChatmailSidecar's `Listeners.bind`), seen from outside a
real child: the per-source connection cap from the configuration, and an accept path that backs off
instead of spinning when the child is out of file descriptors."""

import os
import resource
import socket
import subprocess
import threading
import time
import urllib.request

import pytest

from conftest import bin_dir, terminate, wait_until
from test_exit_status import supervised


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_relay(tmp_path, extra="", nofile=None):
    """chatmail-iroh on its own (the simplest child; all share the listener code), optionally with a
    file-descriptor limit that it cannot raise (soft = hard)."""
    port = free_port()
    config = tmp_path / "iroh.conf"
    config.write_text(f"""[supervisor]
state_dir = "{tmp_path}/state"
runtime_dir = "{tmp_path}/run"
[turn]
enabled = false
[shadowsocks]
enabled = false
[imap]
enabled = false
[iroh]
listen = "127.0.0.1:{port}"
handshake_timeout = 60
{extra}
""")

    def limit():
        resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))

    log = open(tmp_path / "iroh.log", "w")
    proc = subprocess.Popen([str(bin_dir() / "chatmail-iroh"), "--config", str(config)], stdout=log,
                            stderr=subprocess.STDOUT, preexec_fn=limit if nofile else None)
    wait_until(lambda: ping(port) or proc.poll() is not None, timeout=20, what="the relay to answer")
    assert proc.poll() is None, (tmp_path / "iroh.log").read_text()
    return proc, port


def ping(port, source="127.0.0.1"):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=3, source_address=(source, 0)) as s:
            s.sendall(b"GET /ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            return s.recv(64).startswith(b"HTTP/1.1 200")
    except OSError:
        return False


def closed_by_server(sock, timeout=5):
    sock.settimeout(timeout)
    try:
        return sock.recv(16) == b""
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False


def cpu_seconds(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_connections_over_the_per_source_cap_are_closed(tmp_path):
    proc, port = start_relay(tmp_path, "max_connections_per_source = 4")
    held = []
    try:
        for _ in range(4):
            held.append(socket.create_connection(("127.0.0.1", port), timeout=5))
        # Each is accepted and counted before the next one: give the relay a moment to see them.
        time.sleep(0.3)
        assert all(not closed_by_server(s, timeout=0.2) for s in held), "the first four stay open"
        over = socket.create_connection(("127.0.0.1", port), timeout=5)
        held.append(over)
        assert closed_by_server(over), "the fifth from the same address is closed at once"
        assert ping(port, source="127.0.0.2"), "another address still gets in"
        held.pop(0).close()
        assert wait_until(lambda: ping(port), timeout=10, what="the freed place to be usable")
    finally:
        for s in held:
            s.close()
        terminate(proc)
    assert "per-source cap" in (tmp_path / "iroh.log").read_text()


def test_out_of_descriptors_the_accept_path_backs_off_and_recovers(tmp_path):
    proc, port = start_relay(tmp_path, nofile=64)
    clients = []
    try:
        # More connections than descriptors: the kernel completes them into the backlog; the relay
        # accepts until EMFILE, and the listener stays readable.
        for _ in range(120):
            clients.append(socket.create_connection(("127.0.0.1", port), timeout=5))
        time.sleep(1)
        assert proc.poll() is None
        # CPU the relay uses over a window, against what a busy loop gets in the same window on this
        # (shared) machine: a spinning event loop would get about as much as the busy loop.
        spent = {}

        def busy():
            start = time.thread_time()
            end = time.monotonic() + 3
            while time.monotonic() < end:
                pass
            spent["busy"] = time.thread_time() - start

        before = cpu_seconds(proc.pid)
        thread = threading.Thread(target=busy)
        thread.start()
        thread.join()
        relay = cpu_seconds(proc.pid) - before
        assert spent["busy"] > 0.3, f"the busy loop got too little CPU to compare: {spent}"
        assert relay < 0.25 * spent["busy"], f"relay {relay:.2f} s CPU vs a busy loop {spent['busy']:.2f} s"
        assert "accept failed" in (tmp_path / "iroh.log").read_text()
        for client in clients:
            client.close()
        clients.clear()
        assert wait_until(lambda: ping(port), timeout=15, what="the relay to serve again")
    finally:
        for client in clients:
            client.close()
        terminate(proc)


@pytest.mark.parametrize("child", ["imap", "turn", "iroh", "shadowsocks"])
def test_every_child_caps_connections_per_source(supervisor_factory, tmp_path, child):
    """Each child's main hands its section's cap to its listeners."""
    sup = supervised(supervisor_factory, tmp_path, child, extra=["max_connections_per_source = 2"]).start()
    sup.wait_state(child, "ready", timeout=30)
    port = sup.ports[child]
    held = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(2)]
    try:
        time.sleep(0.3)
        over = socket.create_connection(("127.0.0.1", port), timeout=5)
        held.append(over)
        assert closed_by_server(over), f"{child}: the third connection from one address is closed"
        assert all(not closed_by_server(s, timeout=0.3) for s in held[:2]), f"{child}: the first two stay open"
        other = socket.create_connection(("127.0.0.1", port), timeout=5, source_address=("127.0.0.2", 0))
        held.append(other)
        assert not closed_by_server(other, timeout=0.5), f"{child}: another address still gets in"
    finally:
        for s in held:
            s.close()
