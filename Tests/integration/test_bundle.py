"""The whole bundle as `make run` starts it: the repository's supervisor.conf (its state moved to a
temporary directory), the real supervisor and all four real sidecars. Each sidecar answers a real
request, IMAP serves the others through METADATA, and a stop leaves no process behind."""

import hashlib
import imaplib
import os
import re
import signal
import socket
import struct
import subprocess
import time
import urllib.request

import pytest

import ssclient
import turn_stun
from conftest import ROOT, alive, bin_dir, wait_until
from test_shadowsocks import parse_sip002

CHILDREN = ["turn", "iroh", "shadowsocks", "imap"]


def port_free(port):
    """Nothing listens on `port` (TCP) or holds it (UDP); connections closed a moment ago (TIME_WAIT) do not
    count, as the servers bind with SO_REUSEADDR."""
    for family, kind in ((socket.AF_INET, socket.SOCK_STREAM), (socket.AF_INET, socket.SOCK_DGRAM)):
        with socket.socket(family, kind) as probe:
            if kind == socket.SOCK_STREAM:
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                return False
    return True


def start_bundle(directory, supervisor_lines=()):
    """The supervisor with the repository's supervisor.conf, its state and runtime moved into `directory`
    (an empty state directory: nothing made yet), `supervisor_lines` added to its [supervisor] section. Returns
    the process, with `ctl` and `states` attached."""
    text = (ROOT / "supervisor.conf").read_text()
    for line in supervisor_lines:  # each replaces the key's line, or is added after the section header
        key = line.split("=")[0].strip()
        text, replaced = re.subn(rf"^{key} = .*$", line, text, count=1, flags=re.M)
        if not replaced:
            text = text.replace("[supervisor]\n", f"[supervisor]\n{line}\n", 1)
    ports = sorted({int(p) for p in re.findall(r'"127\.0\.0\.1:(\d+)"', text)})
    busy = [p for p in ports if not port_free(p)]
    if busy:
        pytest.fail(f"the development ports {busy} are in use (is `make run` running?)")
    text = text.replace('".run/', f'"{directory}/').replace('runtime_dir = ".run"', f'runtime_dir = "{directory}"')
    config = directory / "supervisor.conf"
    config.write_text(text)
    log = open(directory / "supervisor.log", "w")
    env = {k: v for k, v in os.environ.items() if k not in ("NOTIFY_SOCKET", "WATCHDOG_USEC")}
    proc = subprocess.Popen([str(bin_dir() / "chatmail-supervisor"), "--config", str(config)], stdout=log,
                            stderr=subprocess.STDOUT, env=env, start_new_session=True)
    log.close()

    def ctl(*args):
        result = subprocess.run([str(bin_dir() / "chatmailctl"), *args, "--config", str(config)],
                                capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr
        return result.stdout

    def states():
        import json
        return {s["name"]: s for s in json.loads(ctl("status", "--json"))["sidecars"]}

    wait_until(lambda: (directory / "control.sock").exists() or proc.poll() is not None, what="the control socket")
    assert proc.poll() is None, (directory / "supervisor.log").read_text()
    proc.ctl, proc.states, proc.tmp = ctl, states, directory
    return proc


def stop_bundle(proc, timeout=30):
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture
def bundle(tmp_path):
    proc = start_bundle(tmp_path)
    try:
        yield proc
    finally:
        stop_bundle(proc)


def stun_binding(port):
    """A STUN Binding request over UDP; the XOR-MAPPED-ADDRESS port in the success response."""
    transaction = os.urandom(12)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(5)
        sock.bind(("127.0.0.1", 0))
        sock.sendto(struct.pack("!HHI", 0x0001, 0, 0x2112A442) + transaction, ("127.0.0.1", port))
        data, _ = sock.recvfrom(2048)
        mine = sock.getsockname()[1]
    kind, length, cookie = struct.unpack("!HHI", data[:8])
    assert kind == 0x0101 and cookie == 0x2112A442 and data[8:20] == transaction
    offset = 20
    while offset < 20 + length:
        attribute, size = struct.unpack("!HH", data[offset:offset + 4])
        if attribute == 0x0020:
            return struct.unpack("!H", data[offset + 6:offset + 8])[0] ^ 0x2112, mine
        offset += 4 + (size + 3) // 4 * 4
    pytest.fail("no XOR-MAPPED-ADDRESS")


def test_the_development_bundle_runs_and_discovers(bundle):
    status = wait_until(lambda: (s := bundle.states()) and all(s[n]["state"] == "ready" for n in CHILDREN) and s,
                        timeout=60, what="all four sidecars ready")
    pids = {name: status[name]["pid"] for name in CHILDREN}

    mapped, mine = stun_binding(3478)
    assert mapped == mine, "TURN answers STUN with the client's address"
    with urllib.request.urlopen("http://127.0.0.1:3340/ping", timeout=5) as response:
        assert response.status == 200
    with socket.create_connection(("127.0.0.1", 8388), timeout=5):
        pass

    imap = imaplib.IMAP4("127.0.0.1", 1143)
    imap.login("bundle123@localhost", "a-long-enough-password-1")  # created on first login
    tag = imap._new_tag().decode()
    imap.send(f'{tag} GETMETADATA "" (/shared/vendor/deltachat/turn /shared/vendor/deltachat/irohrelay)\r\n'
              .encode())
    reply = b""
    while not re.search(rf"^{tag} ".encode(), reply, re.M):
        reply += imap.readline()
    imap.logout()
    assert f"{tag} OK".encode() in reply
    assert b'/shared/vendor/deltachat/irohrelay "http://127.0.0.1:3340"' in reply
    turn = re.search(rb'/shared/vendor/deltachat/turn "([^"]+)"', reply)
    assert turn and turn.group(1).startswith(b"127.0.0.1:3478:"), reply

    bundle.send_signal(signal.SIGTERM)
    assert bundle.wait(30) == 0
    wait_until(lambda: not any(alive(pid) for pid in pids.values()), timeout=10, what="every child gone")
    for port in (1143, 1993, 3340, 8388):
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=1).close()


def all_ready_without_config_error(bundle):
    """All four children ready; fails at once when one is in `config error` (it would wait for an operator)."""
    status = bundle.states()
    broken = {n: s["message"] for n, s in status.items() if s["state"] == "config error"}
    if broken:
        pytest.fail(f"configuration error on a first start: {broken}\n{(bundle.tmp / 'supervisor.log').read_text()}")
    return all(status[n]["state"] == "ready" for n in CHILDREN) and status


def test_the_first_start_from_an_empty_state_directory_always_comes_up(tmp_path):
    """Twenty first starts in a row, each from an empty state directory: the supervisor makes what the children
    share (the development certificate, the Shadowsocks key) before any of them starts, so every start has all
    four children ready within a bound and none in `config error` (they used to race to write the certificate,
    and one read another's half-written pair)."""
    started = time.monotonic()
    for attempt in range(20):
        directory = tmp_path / f"start-{attempt}"
        directory.mkdir()
        proc = start_bundle(directory)
        try:
            wait_until(lambda: all_ready_without_config_error(proc), timeout=30,
                       what=f"all four sidecars ready on start {attempt}")
            assert "exited unexpectedly" not in (directory / "supervisor.log").read_text()
        finally:
            stop_bundle(proc)
        assert proc.returncode == 0
        assert time.monotonic() - started < 400, f"20 starts took too long (at start {attempt})"


# The clients of the no-log test connect from this loopback address, which nothing else in the bundle uses, so
# that finding it in a log means a client's address was logged.
CLIENT = "127.0.0.7"


def imap_turn_credential(account, password):
    """LOGIN from CLIENT on the plain port, and the TURN value from METADATA: (username, password)."""
    sock = socket.create_connection(("127.0.0.1", 1143), timeout=10, source_address=(CLIENT, 0))
    reader = sock.makefile("rb")
    reader.readline()
    sock.sendall(f"a LOGIN {account} {password}\r\nb GETMETADATA \"\" (/shared/vendor/deltachat/turn)\r\n"
                 "c LOGOUT\r\n".encode())
    reply = b""
    while not reply.endswith(b"c OK LOGOUT completed\r\n") and (line := reader.readline()):
        reply += line
    sock.close()
    found = re.search(rb'/shared/vendor/deltachat/turn "127\.0\.0\.1:3478:(\d+):([^"]+)"', reply)
    assert found, reply
    return found.group(1).decode(), found.group(2).decode()


def turn_allocate(username, password):
    """A TURN allocation over UDP from CLIENT with the credential (401 first, then the authenticated Allocate)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(5)
        sock.bind((CLIENT, 0))
        transport = turn_stun.attr(0x0019, bytes([17, 0, 0, 0]))
        tid = os.urandom(12)
        sock.sendto(turn_stun.msg(0x0003, tid, [transport]), ("127.0.0.1", 3478))
        kind, attrs = turn_stun.parse(sock.recvfrom(2048)[0])
        assert kind == 0x0113, hex(kind)
        realm, nonce = attrs[0x0014], attrs[0x0015]
        key = hashlib.md5(f"{username}:{realm.decode()}:{password}".encode()).digest()
        tid = os.urandom(12)
        request = turn_stun.msg(0x0003, tid, [transport, turn_stun.attr(0x0006, username.encode()),
                                               turn_stun.attr(0x0014, realm), turn_stun.attr(0x0015, nonce)], key=key)
        sock.sendto(request, ("127.0.0.1", 3478))
        kind, _ = turn_stun.parse(sock.recvfrom(2048)[0])
        assert kind == 0x0103, hex(kind)


@pytest.mark.parametrize("no_log", [False, True], ids=["logging", "no_log"])
def test_no_log_keeps_clients_out_of_every_childs_log(tmp_path, no_log):
    """The development bundle at log level trace, with clients from CLIENT: an IMAP login fetching its TURN
    credential, a TURN allocation with it, STUN, an iroh request, a Shadowsocks request for a refused target.
    With no_log the collected output of the supervisor and every child has none of the client address, the
    account, the TURN username, the Shadowsocks target; with logging on, each of them is there (so the
    check can fail)."""
    account, secret_target = "nolog1234@localhost", "refused-target.example.net"
    proc = start_bundle(tmp_path, ['log_level = "trace"', f"no_log = {'true' if no_log else 'false'}"])
    try:
        wait_until(lambda: all_ready_without_config_error(proc), timeout=60, what="all four sidecars ready")
        username, password = imap_turn_credential(account, "a-long-enough-password-1")
        turn_allocate(username, password)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.settimeout(5)
            sock.bind((CLIENT, 0))
            sock.sendto(struct.pack("!HHI", 0x0001, 0, 0x2112A442) + os.urandom(12), ("127.0.0.1", 3478))
            sock.recvfrom(2048)
        with socket.create_connection(("127.0.0.1", 3340), timeout=5, source_address=(CLIENT, 0)) as sock:
            sock.sendall(b"GET /ping HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            assert sock.recv(100).startswith(b"HTTP/1.1 200")
        method, key, _, _, _ = parse_sip002(proc.ctl("shadowsocks", "url").strip())
        client = ssclient.Client(("127.0.0.1", 8388), method, key, ssclient.address(secret_target, 443),
                                 source_address=(CLIENT, 0))
        wait_until(lambda: not client.sock.recv(1), timeout=10, what="the refused request to be closed")
        client.close()
        marker = "refused target"
        wait_until(lambda: marker in (tmp_path / "supervisor.log").read_text(), timeout=10, what="the refusal logged")
        proc.ctl("reload")  # children log their counters: counts stay in no-log mode
    finally:
        stop_bundle(proc)
    log = (tmp_path / "supervisor.log").read_text()
    values = {"client address": CLIENT, "account": account, "TURN username": username, "target": secret_target}
    found = {what: value for what, value in values.items() if value in log}
    if no_log:
        assert not found, f"no_log, yet logged: {found}"
        assert "[hidden]" in log and "IMAP login [hidden] from [hidden]" in log
    else:
        assert found == values, f"logging on, yet not logged: {set(values) - set(found)}"
