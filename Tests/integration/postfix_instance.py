"""A private Postfix instance on loopback: submission without AUTH from 127.0.0.0/8 (plain, and
optionally SMTPS), every message for `domain` relayed over LMTP to chatmail-imap. Needs root and
Debian's postfix."""

import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

MASTER_CF = """
{listen} inet n - n - - smtpd
pickup    unix n - n 60 1 pickup
cleanup   unix n - n - 0 cleanup
qmgr      unix n - n 300 1 qmgr
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

# Implicit TLS (as on 465); its log lines say postfix/smtps/smtpd.
SMTPS_CF = """
{listen} inet n - n - - smtpd -o syslog_name=postfix/smtps -o smtpd_tls_wrappermode=yes
  -o smtpd_tls_security_level=encrypt
tlsmgr    unix - - n 1000? 1 tlsmgr
"""


def available():
    return os.geteuid() == 0 and shutil.which("postfix") is not None


class Postfix:
    def __init__(self, domain: str, smtp_port: int, lmtp: str, smtps_port=None, certificate=None):
        """`lmtp` is Postfix's next hop: "inet:127.0.0.1:PORT" or "unix:/path/to/socket". With `smtps_port`,
        also SMTPS there with `certificate`, a (certificate, key) pair of PEM files."""
        # Postfix's daemons run as the postfix user: keep everything out of root-only temp dirs.
        self.root = Path(tempfile.mkdtemp(prefix="chatmail-postfix-", dir="/var/tmp"))
        os.chmod(self.root, 0o755)
        self.etc = self.root / "etc"
        self.etc.mkdir()
        self.port = smtp_port
        (self.etc / "main.cf").write_text(f"""
compatibility_level = 3.6
queue_directory = {self.root}/queue
data_directory = {self.root}/data
mail_owner = postfix
myhostname = mx.{domain}
mydomain = {domain}
myorigin = {domain}
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
relay_domains = {domain}
relay_transport = lmtp:{lmtp}
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
smtpd_recipient_restrictions = permit_mynetworks, reject
smtputf8_enable = yes
maillog_file = {self.root}/maillog
alias_maps =
alias_database =
biff = no
smtpd_banner = $myhostname ESMTP
message_size_limit = 31457280
""" + (f"smtpd_tls_chain_files = {certificate[1]}, {certificate[0]}\n" if smtps_port else ""))
        master = MASTER_CF.format(listen=f"127.0.0.1:{smtp_port}")
        if smtps_port:
            master += SMTPS_CF.format(listen=f"127.0.0.1:{smtps_port}")
        (self.etc / "master.cf").write_text(master)
        (self.root / "queue").mkdir()
        (self.root / "data").mkdir()
        shutil.chown(self.root / "data", "postfix", "postfix")
        self.postfix("check")
        self.postfix("start")
        try:
            for port in (smtp_port, smtps_port):
                if port:
                    self._wait_listening(port)
        except BaseException:
            self.stop()
            raise

    def _wait_listening(self, port):
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError("postfix did not start: " + self.log())

    def postfix(self, *args):
        return subprocess.run(["postfix", "-c", str(self.etc), *args], capture_output=True, text=True, timeout=60)

    def log(self):
        path = self.root / "maillog"
        return path.read_text() if path.exists() else ""

    def stop(self):
        self.postfix("stop")
        time.sleep(0.5)
        shutil.rmtree(self.root, ignore_errors=True)
