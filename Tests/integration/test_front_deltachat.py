"""The real Delta Chat core onboarding through the relay's HTTPS front alone, as a user behind a network that
leaves only 443 open: given nothing but the invite link `chatmailctl invite` prints (`dcaccount:https://<domain>/new`)
it posts to the front's `/new`, fetches the autoconfiguration from the front, finds 993/143 and 465/587 closed and
configures IMAP and SMTP on 443 (ALPN `imap` to chatmail-imap, `smtp` to Debian's Postfix, both behind PROXY v2);
a second account does the same from the short form `dcaccount:<domain>` (core makes up the credentials), and the
two write each way. chatmail-imap's log and its failed-login limiter, and Postfix's log, see the client's address.

Two network namespaces joined by a veth pair: the relay's (10.78.0.1; the supervisor with chatmail-imap and
chatmail-iroh, and Postfix, everything but the front on loopback only) and the client's (10.78.0.2, where
deltachat-rpc-server runs; `_chatmail.test` resolves to 10.78.0.1 through /etc/netns/NAME/hosts, which
`ip netns exec` mounts over /etc/hosts). The mail domain starts with `_`: for such names core checks the
certificate's name but not its issuer, so a self-signed certificate passes its strict TLS (core >= 2.46).
Needs root (CI runs as root), Debian's postfix and deltachat-rpc-server (make test-deps)."""

import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import bin_dir, time_limit as limited_to, wait_until
from postfix_instance import Postfix
from test_tls import make_certificate

rpc_client = pytest.importorskip("deltachat_rpc_client")

DOMAIN = "_chatmail.test"
RELAY, CLIENT = "10.78.0.1", "10.78.0.2"
# core's strict TLS skips the issuer check for names starting with `_` from this version on.
OLDEST_CORE = (2, 46)

# A LOGIN through the front (ALPN imap) per password, from wherever it runs; prints each tagged answer.
IMAP_LOGINS = """
import socket, ssl, sys
context = ssl.create_default_context()
context.check_hostname = False
context.verify_mode = ssl.CERT_NONE
context.set_alpn_protocols(["imap"])
for password in sys.argv[2:]:
    sock = socket.create_connection((sys.argv[1].split("@")[1], 443), timeout=10)
    with context.wrap_socket(sock, server_hostname="x") as tls:
        lines = tls.makefile("rb")
        lines.readline()
        tls.sendall(b"a LOGIN " + sys.argv[1].encode() + b" " + password.encode() + b"\\r\\n")
        while not (line := lines.readline()).startswith(b"a "):
            assert line, "closed"
        print(line.decode().strip(), flush=True)
"""


@pytest.fixture(autouse=True)
def time_limit():
    """The client's waits have no timeout of their own: bound the whole test (teardown still runs)."""
    with limited_to(120, "the Delta Chat front test"):
        yield


class Namespaces:
    """The relay's and the client's network namespaces, a veth pair between them, `DOMAIN` in both hosts files
    and a resolver that answers nothing (so that other names fail at once)."""

    def __init__(self):
        self.tag = os.getpid() % 100000
        self.relay, self.client = f"cmfront{self.tag}r", f"cmfront{self.tag}c"
        self.made = []

    def open(self):
        tag = self.tag
        for name in (self.relay, self.client):
            etc = Path("/etc/netns") / name
            etc.mkdir(parents=True, exist_ok=True)
            (etc / "hosts").write_text(f"127.0.0.1 localhost\n{RELAY} {DOMAIN}\n")
            (etc / "resolv.conf").write_text("nameserver 127.0.0.1\noptions attempts:1 timeout:1\n")
            self.made.append(name)
            subprocess.run(["ip", "netns", "add", name], check=True, capture_output=True, timeout=30)
        relay, client = self.relay, self.client
        for args in (f"link add fr{tag} netns {relay} type veth peer name fc{tag} netns {client}",
                     f"-n {relay} link set lo up", f"-n {relay} addr add {RELAY}/24 dev fr{tag}",
                     f"-n {relay} link set fr{tag} up", f"-n {client} link set lo up",
                     f"-n {client} addr add {CLIENT}/24 dev fc{tag}", f"-n {client} link set fc{tag} up"):
            subprocess.run(["ip", *args.split()], check=True, capture_output=True, timeout=30)

    def prefix(self, name):
        return ["ip", "netns", "exec", name]

    def close(self):
        for name in self.made:
            subprocess.run(["ip", "netns", "del", name], capture_output=True, timeout=30)
            shutil.rmtree(Path("/etc/netns") / name, ignore_errors=True)
        try:
            Path("/etc/netns").rmdir()
        except OSError:
            pass


class Relay:
    """Postfix and the supervisor (chatmail-imap and chatmail-iroh) in the relay's namespace. Only the front
    listens on the public address; IMAP (143, 993, the PROXY listener) and Postfix (25, 587, 465, the front's
    SMTPS service) on loopback, so a client there finds 993, 143, 465 and 587 closed."""

    def __init__(self, tmp_path, namespaces):
        self.tmp, self.prefix = tmp_path, namespaces.prefix(namespaces.relay)
        certificate = make_certificate(tmp_path, DOMAIN)
        self.postfix = Postfix(DOMAIN, 25, 587, 465, certificate, front_port=10465, prefix=self.prefix)
        self.config = tmp_path / "supervisor.conf"
        self.log = tmp_path / "supervisor.log"
        self.config.write_text(f"""
[supervisor]
state_dir = "{tmp_path}/state"
runtime_dir = "{tmp_path}/run"
control_socket = "{tmp_path}/run/control.sock"
log_level = "debug"
[imap]
listen = "127.0.0.1:143"
tls_listen = "127.0.0.1:993"
proxy_tls_listen = "127.0.0.1:10993"
lmtp_socket = "{self.postfix.lmtp_socket}"
auth_socket = "{self.postfix.auth_socket}"
mail_domain = "{DOMAIN}"
password_iterations = 1000
max_failed_logins_per_minute = 3
[iroh]
listen = "127.0.0.1:3340"
tls_listen = "{RELAY}:443"
url = "https://{DOMAIN}/"
new_accounts_per_hour = 1
smtp_upstream = "127.0.0.1:10465"
[turn]
enabled = false
[shadowsocks]
enabled = false
[tls]
certificate = "{certificate[0]}"
key = "{certificate[1]}"
""")
        self.proc = None
        try:
            env = {k: v for k, v in os.environ.items() if k not in ("NOTIFY_SOCKET", "WATCHDOG_USEC")}
            with open(self.log, "w") as log:
                self.proc = subprocess.Popen([*self.prefix, str(bin_dir() / "chatmail-supervisor"), "--config",
                                              str(self.config)], stdout=log, stderr=subprocess.STDOUT, env=env,
                                             start_new_session=True)
            wait_until(self._ready, timeout=60, what="chatmail-imap and chatmail-iroh ready in the namespace")
            self.postfix.start()
        except BaseException:
            self.stop()
            raise

    def ctl(self, *args):
        return subprocess.run([str(bin_dir() / "chatmailctl"), *args, "--config", str(self.config)],
                              capture_output=True, text=True, timeout=30)

    def _ready(self):
        assert self.proc.poll() is None, self.log.read_text()
        status = self.ctl("status", "--json")
        if status.returncode != 0:
            return False
        states = {s["name"]: s["state"] for s in json.loads(status.stdout)["sidecars"]}
        return states.get("imap") == "ready" and states.get("iroh") == "ready"

    def output(self):
        return self.log.read_text()

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.postfix.stop()


@pytest.fixture
def namespaces():
    if os.geteuid() != 0:
        pytest.skip("needs root for network namespaces (CI runs as root)")
    missing = [tool for tool in ("ip", "postfix", "curl", "deltachat-rpc-server") if shutil.which(tool) is None]
    if missing:
        pytest.fail(f"needs {', '.join(missing)} (iproute2, postfix, curl, deltachat-rpc-server: make test-deps)")
    ns = Namespaces()
    try:
        ns.open()
        yield ns
    finally:
        ns.close()


def core_version(rpc):
    version = rpc.get_system_info()["deltachat_core_version"]
    return tuple(int(n) for n in re.findall(r"\d+", version)[:2]), version


def join(account, qr):
    """Configures `account` from the `dcaccount:` link alone and starts it."""
    account.add_transport_from_qr(qr)
    account.start_io()
    # The core skips mail already in INBOX when it first selects it; the first IDLE comes after that SELECT.
    account.wait_for_event("ImapInboxIdle")


def connections(account):
    """(host, port, ALPN) of every connection core made and keeps in its history."""
    with sqlite3.connect(f"file:{account.get_info()['database_dir']}?mode=ro", uri=True) as db:
        return {tuple(row) for row in db.execute("SELECT host, port, alpn FROM connection_history")}


def test_delta_chat_onboards_and_chats_through_the_front_on_443_alone(namespaces, tmp_path):
    from test_imap_deltachat import exchange_messages

    relay = Relay(tmp_path, namespaces)
    try:
        link = relay.ctl("invite").stdout.strip()
        assert link == f"dcaccount:https://{DOMAIN}/new", link
        rpc_server = [*namespaces.prefix(namespaces.client), "deltachat-rpc-server"]
        with rpc_client.Rpc(accounts_dir=str(tmp_path / "accounts"), rpc_server_path=rpc_server) as rpc:
            version, name = core_version(rpc)
            assert version >= OLDEST_CORE, f"core {name} is too old for this test: make test-deps"
            dc = rpc_client.DeltaChat(rpc)
            alice, bob = dc.add_account(), dc.add_account()
            join(alice, link)
            # The credentials came from the front's /new, which allows one account per hour per source here:
            # the client's next POST is refused, so core's was the first, and came from the client's address.
            post = subprocess.run([*namespaces.prefix(namespaces.client), "curl", "-sk", "-X", "POST",
                                   f"https://{DOMAIN}/new"], capture_output=True, text=True, timeout=30)
            assert "Too many new accounts" in post.stdout, post
            join(bob, f"dcaccount:{DOMAIN}")
            addresses = [alice.get_config("configured_addr"), bob.get_config("configured_addr")]
            for address in addresses:
                assert re.fullmatch(rf"[a-z0-9]{{9}}@{re.escape(DOMAIN)}", address), address
            # Both configured from the front's autoconfiguration (443 after the closed ports) and connected on 443.
            for account in (alice, bob):
                settings = account.get_info()["used_transport_settings"]
                assert f"{DOMAIN}:443" in settings and f"{DOMAIN}:993" in settings, settings
                used = connections(account)
                assert {(DOMAIN, 443, "imap"), (DOMAIN, 443, "smtp")} <= used, used
                assert not any(port != 443 for _, port, _ in used), used
            exchange_messages(alice, bob)
            password = alice.list_transports()[0]["password"]
        log = relay.output()
        for address in addresses:
            assert f"IMAP login {address} from {CLIENT}" in log, log[-3000:]
        assert not re.search(r"IMAP login \S+ from (?!" + re.escape(CLIENT) + r"\b)", log), log[-3000:]
        mail = relay.postfix.log()
        assert "postfix/front/smtpd" in mail and f"connect from unknown[{CLIENT}]" in mail, mail[-3000:]
        assert f"sasl_username={addresses[0]}" in mail and f"sasl_username={addresses[1]}" in mail, mail[-3000:]
        assert "status=sent (250 2.0.0" in mail, mail[-3000:]
        # IMAP's limiter counts the client's address: after three failed logins through the front from the
        # client's namespace its right password is refused there, while the relay's own address still logs in.
        logins = [sys.executable, "-c", IMAP_LOGINS, addresses[0]]
        answers = subprocess.run([*namespaces.prefix(namespaces.client), *logins, "wrong1", "wrong2", "wrong3",
                                  password], capture_output=True, text=True, timeout=60)
        lines = answers.stdout.splitlines()
        assert len(lines) == 4 and all(" NO " in l for l in lines[:3]), answers
        assert "UNAVAILABLE" in lines[3], answers
        answer = subprocess.run([*relay.prefix, *logins, password], capture_output=True, text=True, timeout=60)
        assert answer.stdout.startswith("a OK"), answer
    finally:
        relay.stop()
