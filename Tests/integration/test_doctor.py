"""`chatmailctl doctor` against the real bundle.

On the development bundle (loopback) it passes, with the self-signed certificate as a warning. In a network
namespace whose public address is 10.77.0.1 (a veth pair, not loopback; the name chat.doctor.test resolves
there through /etc/netns/NAME/hosts, which `ip netns exec` mounts over /etc/hosts) it passes too, and then
fails with the step and cause named when the relay range or TURN's UDP port is dropped by nftables, when the
iroh child is stopped (each relay protocol generation, 0.35 and 1.x, its own step, and the HTTPS front's), when IMAP
is stopped (the front closes ALPN imap), and when the certificate is for another name. Needs root (CI runs as root)."""

import json
import os
import shutil
import signal
import subprocess
from pathlib import Path

import pytest

from conftest import bin_dir, wait_until
from test_bundle import CHILDREN, start_bundle, stop_bundle
from turn_stun import turn_from_imap

ADDRESS = "10.77.0.1"
NAME = "chat.doctor.test"
RELAY_PORTS = "61000-61999"  # above the ephemeral range, so dropping it leaves the client's own ports alone
FRONT_PORT = 3341  # the HTTPS front (443 in production)


def doctor(config, prefix=(), *args):
    result = subprocess.run([*prefix, str(bin_dir() / "chatmailctl"), "doctor", "--config", str(config),
                             "--timeout", "1.5", *args], capture_output=True, text=True, timeout=120)
    return result


def step(result, service, name):
    """The doctor's JSON entry for one step."""
    steps = json.loads(result.stdout)["steps"]
    found = [s for s in steps if s["service"] == service and s["step"] == name]
    assert found, f"no step {service} {name} in {result.stdout}"
    return found[0]


def test_doctor_passes_on_the_development_bundle(tmp_path):
    bundle = start_bundle(tmp_path)
    try:
        wait_until(lambda: all(s["state"] == "ready" for s in bundle.states().values()), timeout=60,
                   what="all four sidecars ready")
        result = doctor(tmp_path / "supervisor.conf")
        assert result.returncode == 0, result.stdout + result.stderr
        lines = result.stdout.splitlines()
        assert any(l.startswith("WARN imap") and "self-signed" in l for l in lines), result.stdout
        for service, what in [("turn", "relay round trip"), ("turn", "relay range"), ("iroh", "relay round trip 0.35"),
                              ("iroh", "relay round trip 1.x"),
                              ("shadowsocks", "imap through ss://"), ("imap", "login"), ("imap", "discovery turn")]:
            assert any(l.startswith(f"ok   {service}") and what in l for l in lines), (what, result.stdout)
        result = doctor(tmp_path / "supervisor.conf", (), "--json")
        report = json.loads(result.stdout)
        assert report["passed"] is True
        assert {s["service"] for s in report["steps"]} == set(CHILDREN)
        # The HTTPS front (127.0.0.1:3341 here) at the mail domain, localhost; no SMTP upstream in development.
        for name, detail in (("front imap", "ALPN imap: IMAP greeting"), ("front https", "/generate_204: 204"),
                             ("front autoconfig", "names localhost, IMAP on 993, 143, 3341"),
                             ("front invite", "dcaccount:https://localhost:3341/new, this front")):
            found = step(result, "iroh", name)
            assert found["verdict"] in ("pass", "warn") and detail in found["detail"], found
        assert "self-signed" in step(result, "iroh", "front imap")["detail"]
        skipped = step(result, "iroh", "front smtp")
        assert skipped["verdict"] == "skip" and "not configured" in skipped["detail"], skipped
    finally:
        stop_bundle(bundle)


def test_doctor_allocates_with_the_credential_imap_hands_out(tmp_path):
    """IMAP hands out a TURN credential that TURN refuses: doctor's TURN steps use that very credential (not a
    fresh one from the supervisor), so they fail, naming the credential's source and the cause. How it comes
    about: IMAP keeps the supervisor's last discovery answer and hands it out when the supervisor does not
    answer within a second; here the TURN secret that answer was made with has since been rotated out (16
    secrets are kept), and the supervisor hangs (SIGSTOP)."""
    bundle = start_bundle(tmp_path)
    try:
        wait_until(lambda: all(s["state"] == "ready" for s in bundle.states().values()), timeout=60,
                   what="all four sidecars ready")
        result = doctor(tmp_path / "supervisor.conf", (), "--json")
        assert result.returncode == 0, result.stdout + result.stderr
        assert "as IMAP hands it out" in step(result, "turn", "credential")["detail"]

        turn_from_imap(1143, "doctorttt@localhost", "a-long-enough-password-1")  # IMAP's last answer
        for _ in range(16):
            bundle.ctl("turn", "rotate-secret")
        os.kill(bundle.pid, signal.SIGSTOP)
        try:
            result = doctor(tmp_path / "supervisor.conf", (), "--json")
            text = doctor(tmp_path / "supervisor.conf").stdout
        finally:
            os.kill(bundle.pid, signal.SIGCONT)
        assert result.returncode != 0, result.stdout
        assert "as IMAP hands it out" in step(result, "turn", "credential")["detail"]
        for name in ("allocate udp", "allocate tcp", "allocate tls"):
            failed = step(result, "turn", name)
            assert (failed["verdict"], failed["cause"]) == ("fail", "authentication"), failed
            assert "the credential IMAP hands out" in failed["detail"], failed
        assert step(result, "turn", "binding udp")["verdict"] == "pass"
        assert step(result, "supervisor", "control socket")["cause"] == "not-running"
        # Shadowsocks' key is asked of the supervisor: its silence is a failed step, not the end of the report.
        failed = step(result, "shadowsocks", "key")
        assert (failed["verdict"], failed["cause"]) == ("fail", "not-running"), failed
        assert "no answer from the supervisor" in failed["detail"]
        assert "FAIL turn         allocate udp" in text and "credential refused" in text, text
    finally:
        stop_bundle(bundle)


class Namespace:
    """A named network namespace with 10.77.0.1 on a veth pair and chat.doctor.test in its hosts file."""

    def __init__(self):
        self.name = f"cmdoctor{os.getpid()}"
        self.etc = Path("/etc/netns") / self.name
        self.etc.mkdir(parents=True, exist_ok=True)
        (self.etc / "hosts").write_text(f"127.0.0.1 localhost\n{ADDRESS} {NAME}\n")
        self.run("ip", "netns", "add", self.name, inside=False)
        for command in (["ip", "link", "set", "lo", "up"], ["ip", "link", "add", "veth0", "type", "veth", "peer",
                        "name", "veth1"], ["ip", "addr", "add", f"{ADDRESS}/24", "dev", "veth0"],
                        ["ip", "link", "set", "veth0", "up"], ["ip", "link", "set", "veth1", "up"]):
            self.run(*command)

    @property
    def prefix(self):
        return ["ip", "netns", "exec", self.name]

    def run(self, *command, inside=True):
        subprocess.run([*(self.prefix if inside else []), *command], check=True, capture_output=True, timeout=30)

    def nft(self, rule):
        """Drops what `rule` matches on input (replacing any earlier rule)."""
        subprocess.run([*self.prefix, "nft", "delete", "table", "inet", "doctor"], capture_output=True)
        if rule:
            self.run("nft", f"add table inet doctor; add chain inet doctor input {{ type filter hook input priority 0; }};"
                     f" add rule inet doctor input {rule} drop")

    def close(self):
        subprocess.run(["ip", "netns", "del", self.name], capture_output=True)
        shutil.rmtree(self.etc, ignore_errors=True)
        try:
            self.etc.parent.rmdir()
        except OSError:
            pass


@pytest.fixture
def namespace():
    if os.geteuid() != 0:
        pytest.skip("needs root for a network namespace whose public address is not loopback (CI runs as root)")
    for tool in ("ip", "nft"):
        if not shutil.which(tool):
            pytest.fail(f"needs {tool} (iproute2, nftables: make test-deps)")
    ns = Namespace()
    try:
        yield ns
    finally:
        ns.close()


def write_config(directory, tls_names):
    config = directory / "supervisor.conf"
    config.write_text(f"""
[supervisor]
state_dir = "{directory}/state"
runtime_dir = "{directory}"
control_socket = "{directory}/control.sock"
restart_delay_min = 0.2

[imap]
listen = "{ADDRESS}:143"
tls_listen = "{ADDRESS}:993"
lmtp_socket = "{directory}/lmtp.sock"
mail_domain = "{NAME}"
proxy_tls_listen = "127.0.0.1:10993"

[turn]
listen = "{ADDRESS}:3478"
tls_listen = "{ADDRESS}:5349"
host = "{ADDRESS}"
realm = "{NAME}"
relay_ports = "{RELAY_PORTS}"
allowed_peers = ["{ADDRESS}"]

[iroh]
listen = "{ADDRESS}:3340"
tls_listen = "{ADDRESS}:{FRONT_PORT}"
url = "http://{NAME}:3340"

[shadowsocks]
listen = "{ADDRESS}:8388"
names = ["{NAME}"]

[tls]
self_signed = true
names = {json.dumps(tls_names)}
""")
    return config


def start_supervisor(ns, directory, tls_names=(NAME,)):
    config = write_config(directory, list(tls_names))
    log = open(directory / "supervisor.log", "w")
    env = {k: v for k, v in os.environ.items() if k not in ("NOTIFY_SOCKET", "WATCHDOG_USEC")}
    proc = subprocess.Popen([*ns.prefix, str(bin_dir() / "chatmail-supervisor"), "--config", str(config)],
                            stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    log.close()

    def states():
        result = subprocess.run([str(bin_dir() / "chatmailctl"), "status", "--json", "--config", str(config)],
                                capture_output=True, text=True, timeout=30)
        return {s["name"]: s for s in json.loads(result.stdout)["sidecars"]} if result.returncode == 0 else {}

    wait_until(lambda: (s := states()) and all(s[n]["state"] == "ready" for n in CHILDREN), timeout=60,
               what="all four sidecars ready in the namespace")
    proc.config = config
    return proc


def test_doctor_in_a_namespace_names_each_failure(namespace, tmp_path):
    proc = start_supervisor(namespace, tmp_path)
    try:
        result = doctor(proc.config, namespace.prefix, "--json")
        report = json.loads(result.stdout)
        bad = [s for s in report["steps"] if s["verdict"] not in ("pass", "warn")]
        assert result.returncode == 0 and report["passed"], bad
        assert step(result, "imap", "tls")["verdict"] == "warn"  # self-signed, for the right name
        assert ADDRESS in step(result, "turn", "relay round trip")["detail"]
        assert ADDRESS in step(result, "turn", "relay range")["detail"]
        assert "X-Iroh-Response" in step(result, "iroh", "generate_204")["detail"]
        for generation, detail in (("0.35", "iroh 0.35"), ("1.x", "iroh 1.x, iroh-relay-v2")):
            passed = step(result, "iroh", f"relay round trip {generation}")
            assert passed["verdict"] == "pass" and detail in passed["detail"], passed
        front = step(result, "iroh", "front imap")  # self-signed, for the right name, through the front
        assert front["verdict"] == "warn" and f"{NAME}:{FRONT_PORT} ALPN imap: IMAP greeting" in front["detail"], front
        assert step(result, "iroh", "front invite")["verdict"] == "pass"

        # IMAP stopped: the front still answers HTTPS, but closes ALPN imap (its upstream is gone).
        def ctl(*args):
            subprocess.run([str(bin_dir() / "chatmailctl"), *args, "--config", str(proc.config)], check=True,
                           capture_output=True, timeout=60)

        ctl("stop", "imap", "--wait")
        result = doctor(proc.config, namespace.prefix, "--json")
        assert result.returncode != 0
        failed = step(result, "iroh", "front imap")
        assert (failed["verdict"], failed["cause"]) == ("fail", "protocol-error"), failed
        assert "imap upstream running?" in failed["detail"], failed
        assert step(result, "iroh", "front https")["verdict"] == "warn"
        ctl("start", "imap", "--wait")

        # The relay range dropped: allocations work, nothing from a peer reaches the relayed address.
        namespace.nft(f"udp dport {RELAY_PORTS}")
        result = doctor(proc.config, namespace.prefix, "--json")
        assert result.returncode != 0
        failed = step(result, "turn", "relay range")
        assert (failed["verdict"], failed["cause"]) == ("fail", "relay-unreachable"), failed
        assert step(result, "turn", "allocate udp")["verdict"] == "pass"

        # TURN's UDP port dropped: STUN and Allocate over UDP get no answer; TCP still works.
        namespace.nft("udp dport 3478")
        result = doctor(proc.config, namespace.prefix, "--json")
        assert result.returncode != 0
        for name in ("binding udp", "allocate udp"):
            failed = step(result, "turn", name)
            assert (failed["verdict"], failed["cause"]) == ("fail", "no-answer"), failed
        assert step(result, "turn", "allocate tcp")["verdict"] == "pass"
        assert step(result, "turn", "relay range")["verdict"] == "skip"
        namespace.nft(None)

        # The iroh child stopped: its port is closed, and clients are no longer told about it.
        subprocess.run([str(bin_dir() / "chatmailctl"), "stop", "iroh", "--wait", "--config", str(proc.config)],
                       check=True, capture_output=True, timeout=60)
        result = doctor(proc.config, namespace.prefix, "--json")
        assert result.returncode != 0
        for name in ("generate_204", "relay round trip 0.35", "relay round trip 1.x", "front imap", "front https"):
            failed = step(result, "iroh", name)
            assert (failed["verdict"], failed["cause"]) == ("fail", "port-closed"), failed
        assert step(result, "imap", "discovery iroh")["cause"] == "discovery-mismatch"
        text = doctor(proc.config, namespace.prefix)
        assert "FAIL iroh         generate_204" in text.stdout and "port closed" in text.stdout, text.stdout
        assert "FAIL iroh         relay round trip 1.x" in text.stdout, text.stdout
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)


def test_doctor_in_a_namespace_names_a_certificate_for_another_name(namespace, tmp_path):
    proc = start_supervisor(namespace, tmp_path, tls_names=("other.doctor.test",))
    try:
        result = doctor(proc.config, namespace.prefix, "--json")
        assert result.returncode != 0
        failed = step(result, "imap", "tls")
        assert (failed["verdict"], failed["cause"]) == ("fail", "tls-name-mismatch"), failed
        assert "other.doctor.test" in failed["detail"] and NAME in failed["detail"]
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
