"""A private Postfix instance on loopback configured from packaging/postfix/ (the files an operator
installs), with only paths, ports, the domain and the certificate substituted: port 25 takes mail
for `domain` and delivers it over LMTP to chatmail-imap; submission (STARTTLS) and submissions
(implicit TLS) require a SASL login through chatmail-imap's auth socket, from every address.
Needs root and Debian's postfix."""

import contextlib
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from test_imap import DOMAIN, SupervisedIMAP, free_port
from test_tls import make_certificate

PACKAGING = Path(__file__).resolve().parents[2] / "packaging" / "postfix"
SHIPPED_DOMAIN = "chat.example.org"

# The services of Debian's master.cf that the shipped entries rely on (chroot off: the test's queue
# directory has no chroot tree); "{listen}" is the port-25 listener.
MASTER_CF = """
{listen} inet n - n - - smtpd
pickup    unix n - n 60 1 pickup
cleanup   unix n - n - 0 cleanup
qmgr      unix n - n 300 1 qmgr
tlsmgr    unix - - n 1000? 1 tlsmgr
rewrite   unix - - n - - trivial-rewrite
bounce    unix - - n - 0 bounce
defer     unix - - n - 0 bounce
trace     unix - - n - 0 bounce
verify    unix - - n - 1 verify
flush     unix n - n 1000? 0 flush
proxymap  unix - - n - - proxymap
smtp      unix - - n - - smtp
relay     unix - - n - - smtp
showq     unix n - n - - showq
error     unix - - n - - error
retry     unix - - n - - error
discard   unix - - n - - discard
lmtp      unix - - n - - lmtp
anvil     unix - - n - 1 anvil
scache    unix - - n - 1 scache
postlog   unix-dgram n - n - 1 postlogd
"""


def available():
    return os.geteuid() == 0 and shutil.which("postfix") is not None


def set_parameter(text: str, name: str, value: str) -> str:
    """main.cf with `name = value`, replacing the shipped line (which must exist) or appending."""
    pattern = re.compile(rf"^{re.escape(name)} *=.*$", re.MULTILINE)
    return pattern.sub(lambda _: f"{name} = {value}", text) if pattern.search(text) else text + f"{name} = {value}\n"


class Postfix:
    def __init__(self, domain: str, smtp_port: int, submission_port: int, smtps_port: int, certificate,
                 front_port: int = None, prefix=()):
        """`certificate` is a (certificate, key) pair of PEM files. The LMTP and auth sockets belong at
        `lmtp_socket` and `auth_socket` (where the shipped relative paths point). `start()` once
        chatmail-imap is up. `prefix` runs Postfix under it (`ip netns exec NAME`: its loopback then)."""
        self.prefix = list(prefix)
        # Postfix's daemons run as the postfix user: keep everything out of root-only temp dirs.
        self.root = Path(tempfile.mkdtemp(prefix="chatmail-postfix-", dir="/var/tmp"))
        os.chmod(self.root, 0o755)
        self.etc = self.root / "etc"
        self.etc.mkdir()
        self.queue = self.root / "queue"
        self.socket_dir = self.queue / "chatmail"
        self.socket_dir.mkdir(parents=True)
        os.chmod(self.socket_dir, 0o755)
        self.lmtp_socket = str(self.socket_dir / "lmtp.sock")
        self.auth_socket = str(self.socket_dir / "auth")
        self.port, self.submission_port, self.smtps_port = smtp_port, submission_port, smtps_port
        # SMTPS behind the HTTPS front (PROXY protocol v2), as shipped on 127.0.0.1:10465.
        self.front_port = front_port or free_port()

        main = (PACKAGING / "main.cf").read_text().replace(SHIPPED_DOMAIN, domain)
        login_map = self.etc / "chatmail_login_map"
        shutil.copy(PACKAGING / "login_map", login_map)
        for name, value in {
            "queue_directory": str(self.queue),
            "data_directory": f"{self.root}/data",
            "mail_owner": "postfix",
            "inet_interfaces": "127.0.0.1",
            "inet_protocols": "ipv4",
            "smtpd_tls_chain_files": f"{certificate[1]}, {certificate[0]}",
            "smtpd_sender_login_maps": f"regexp:{login_map}",
            "maillog_file": f"{self.root}/maillog",
        }.items():
            main = set_parameter(main, name, value)
        (self.etc / "main.cf").write_text(main)
        shipped = (PACKAGING / "master.cf").read_text()
        shipped = re.sub(r"^submission ", f"127.0.0.1:{submission_port} ", shipped, flags=re.MULTILINE)
        shipped = re.sub(r"^submissions ", f"127.0.0.1:{smtps_port} ", shipped, flags=re.MULTILINE)
        shipped = re.sub(r"^127\.0\.0\.1:10465 ", f"127.0.0.1:{self.front_port} ", shipped, flags=re.MULTILINE)
        (self.etc / "master.cf").write_text(MASTER_CF.format(listen=f"127.0.0.1:{smtp_port}") + shipped)
        (self.root / "data").mkdir()
        shutil.chown(self.root / "data", "postfix", "postfix")

    def set(self, name, value):
        """Changes one main.cf parameter (before `start`), e.g. relay_transport to LMTP over TCP."""
        path = self.etc / "main.cf"
        path.write_text(set_parameter(path.read_text(), name, value))

    def start(self):
        check = self.postfix("check")
        assert check.returncode == 0, check.stderr
        self.postfix("start")
        try:
            for port in (self.port, self.submission_port, self.smtps_port, self.front_port):
                self._wait_listening(port)
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_listening(self, port):
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self._listening(port):
                return
            time.sleep(0.2)
        raise RuntimeError("postfix did not start: " + self.log())

    def _listening(self, port):
        if self.prefix:
            connect = f"exec 3<>/dev/tcp/127.0.0.1/{port}"
            return subprocess.run([*self.prefix, "bash", "-c", connect], capture_output=True, timeout=10).returncode == 0
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return True
        except OSError:
            return False

    def postfix(self, *args):
        return subprocess.run([*self.prefix, "postfix", "-c", str(self.etc), *args], capture_output=True, text=True,
                              timeout=60)

    def log(self):
        path = self.root / "maillog"
        return path.read_text() if path.exists() else ""

    def stop(self):
        self.postfix("stop")
        time.sleep(0.5)
        shutil.rmtree(self.root, ignore_errors=True)


@contextlib.contextmanager
def running_mail_system(supervisor_factory, tmp_path, transport, shadowsocks=None, smtps_port=None, certificate=None,
                        tls_port=None, supervisor_extra=""):
    """chatmail-imap under the real supervisor (fake TURN child on 127.0.0.1:23478) with its auth socket,
    Postfix in front configured from packaging/postfix/ (port 25, submission with STARTTLS, submissions
    on `smtps_port` with `certificate`), requiring a SASL login through chatmail-imap on both submission
    ports and delivering over LMTP on the Unix socket or on loopback TCP; `shadowsocks` and the rest as
    for SupervisedIMAP."""
    certificate = certificate or make_certificate(tmp_path, "localhost")
    postfix = Postfix(DOMAIN, free_port(), free_port(), smtps_port or free_port(), certificate)
    try:
        server = SupervisedIMAP(supervisor_factory, tmp_path, turn_host="127.0.0.1", plaintext_login=False,
                                lmtp_socket=postfix.lmtp_socket, auth_socket=postfix.auth_socket,
                                tls_port=tls_port, shadowsocks=shadowsocks, supervisor_extra=supervisor_extra)
        if transport == "inet":
            postfix.set("relay_transport", f"lmtp:inet:127.0.0.1:{server.lmtp_port}")
        postfix.start()
        yield server, postfix
    finally:
        postfix.stop()
