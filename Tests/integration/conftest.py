"""Fixtures for running the real supervisor binary with fake children (fake-child.sh)."""

import contextlib
import json
import os
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FAKE_CHILD = Path(__file__).with_name("fake-child.sh")


def bin_dir() -> Path:
    return Path(os.environ.get("CHATMAIL_BIN_DIR", ROOT / ".build" / "debug"))


def wait_until(predicate, timeout=10.0, interval=0.05, what="condition"):
    """Polls `predicate` until it returns a truthy value; fails the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


@contextlib.contextmanager
def time_limit(seconds, what):
    """Raises TimeoutError in the test's thread after `seconds` (SIGALRM): for clients whose waits have no
    timeout of their own, such as Delta Chat's RPC client."""

    def expire(signum, frame):
        raise TimeoutError(f"{what} took longer than {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def terminate(process, timeout=10):
    """SIGTERM, then SIGKILL if `process` has not exited within `timeout` seconds; waits for it."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead for our purposes.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"
    except (FileNotFoundError, IndexError):
        return False


class NotifyListener:
    """A datagram socket standing in for systemd's NOTIFY_SOCKET; records (time, pid, fields)."""

    def __init__(self, path: Path):
        self.path = str(path)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        self.sock.bind(self.path)
        self.sock.settimeout(0.2)
        self.messages = []
        self.running = True
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        creds_size = socket.CMSG_SPACE(12)
        while self.running:
            try:
                data, ancdata, _, _ = self.sock.recvmsg(4096, creds_size + socket.CMSG_SPACE(4 * 8))
            except socket.timeout:
                continue
            except OSError:
                return
            pid = None
            for level, kind, payload in ancdata:
                if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                    pid = int.from_bytes(payload[0:4], "little")
                elif level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                    for i in range(0, len(payload) - len(payload) % 4, 4):
                        os.close(int.from_bytes(payload[i:i + 4], "little"))
            fields = dict(line.split("=", 1) for line in data.decode().split("\n") if "=" in line)
            self.messages.append((time.monotonic(), pid, fields))

    def with_key(self, key):
        return [m for m in self.messages if key in m[2]]

    def close(self):
        self.running = False
        self.thread.join()
        self.sock.close()


class Supervisor:
    """One run of chatmail-supervisor in a temporary directory."""

    def __init__(self, tmp: Path, modes=None, extra=None, supervisor_extra="", env=None, ports=None):
        """`ports` overrides a child's fixed loopback listen port (by child name)."""
        self.tmp = tmp
        self.ports = {"imap": 21143, "turn": 23478, "iroh": 23340, "shadowsocks": 28388, **(ports or {})}
        self.config = tmp / "supervisor.conf"
        self.child_log = tmp / "children.log"
        self.log = tmp / "supervisor.log"
        self.env = {k: v for k, v in os.environ.items() if k not in ("NOTIFY_SOCKET", "WATCHDOG_USEC")}
        self.env.update(FAKE_CHILD_LOG=str(self.child_log), **(env or {}))
        self.proc = None
        self.write_config(modes or {}, extra or {}, supervisor_extra)

    def write_config(self, modes, extra=None, supervisor_extra=""):
        """`modes` maps a child name to a fake-child mode, or None for disabled."""
        extra = extra or {}
        defaults = ['state_dir = "state"', 'runtime_dir = "run"', 'control_socket = "run/control.sock"',
                    'log_level = "debug"', "restart_delay_min = 0.2", "restart_delay_max = 2", "ready_timeout = 5"]
        overridden = {line.split("=")[0].strip() for line in supervisor_extra.splitlines() if "=" in line}
        kept = [line for line in defaults if line.split("=")[0].strip() not in overridden]
        sections = ["\n".join(["[supervisor]", *kept, supervisor_extra]) + "\n"]
        self.socket = str(self.tmp / "run" / "control.sock")
        for line in supervisor_extra.splitlines():
            if line.startswith("control_socket"):
                self.socket = line.split("=", 1)[1].strip().strip('"')
        for name in ["imap", "turn", "iroh", "shadowsocks"]:
            mode = modes.get(name, "ready")
            lines = [f"[{name}]", f'listen = "127.0.0.1:{self.ports[name]}"']
            if mode is None:
                lines.append("enabled = false")
            elif mode.startswith("/"):
                lines.append(f'command = "{mode}"')
            else:
                lines.append(f'command = ["{FAKE_CHILD}", "{mode}"]')
            if name == "turn":
                lines.append('host = "turn.example.org"')
            if name == "iroh":
                lines.append('url = "http://127.0.0.1:23340"')
            lines += extra.get(name, [])
            sections.append("\n".join(lines) + "\n")
        self.config.write_text("\n".join(sections))

    def start(self):
        self.log_file = open(self.log, "a")
        self.proc = subprocess.Popen(
            [str(bin_dir() / "chatmail-supervisor"), "--config", str(self.config)],
            env=self.env, stdout=self.log_file, stderr=subprocess.STDOUT, start_new_session=True)
        wait_until(lambda: os.path.exists(self.socket) or self.proc.poll() is not None,
                   what="the control socket")
        assert self.proc.poll() is None, self.log.read_text()
        return self

    def ctl(self, *args, check=True, user=None, timeout=60, config=True):
        cmd = [str(bin_dir() / "chatmailctl"), *args]
        if config and args[0] != "check-config":
            cmd += ["--config", str(self.config)]
        if user is not None:
            cmd = ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups", *cmd]
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        if check and result.returncode != 0:
            pytest.fail(f"chatmailctl {' '.join(args)} failed ({result.returncode}): {result.stderr}")
        return result

    def status(self):
        data = json.loads(self.ctl("status", "--json").stdout)
        return {s["name"]: s for s in data["sidecars"]}

    def wait_state(self, name, state, timeout=10):
        return wait_until(lambda: (s := self.status()[name])["state"] == state and s,
                          timeout=timeout, what=f"{name} to be {state}")

    def request(self, message: dict):
        """One raw control request on the path socket, as `socat` would send it."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(10)
            s.connect(self.socket)
            s.sendall(json.dumps(message).encode() + b"\n")
            data = b""
            while not data.endswith(b"\n"):
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
            return json.loads(data) if data else None

    def child_lines(self, name=None):
        if not self.child_log.exists():
            return []
        lines = self.child_log.read_text().splitlines()
        return [l for l in lines if name is None or l.startswith(name + " ")]

    def child_pids(self):
        """Every pid a fake child logged: its own and its grandchildren's."""
        pids = set()
        for line in self.child_lines():
            parts = line.split()
            pids.add(int(parts[1]))
            if parts[2] == "grandchild":
                pids.add(int(parts[3]))
        return pids

    def stop(self, timeout=30):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode if self.proc else None

    def cleanup(self):
        self.stop()
        for pid in self.child_pids():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if getattr(self, "log_file", None):
            self.log_file.close()


@pytest.fixture
def supervisor_factory(tmp_path):
    made = []

    def make(**kwargs):
        sup = Supervisor(tmp_path, **kwargs)
        made.append(sup)
        return sup

    yield make
    for sup in made:
        sup.cleanup()


@pytest.fixture
def notify_listener(tmp_path):
    listener = NotifyListener(tmp_path / "notify.sock")
    yield listener
    listener.close()
