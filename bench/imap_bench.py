"""chatmail-imap beside Dovecot (Debian's, passwd-file auth with SHA512-CRYPT as chatmail relays
use), one run, same machine: complete sessions per second (connect, LOGIN, GETMETADATA, LOGOUT)
with 50 parallel clients, LMTP deliveries per second, and memory per idle IMAP session.

    CHATMAIL_BIN_DIR=.build/release python3 bench/imap_bench.py [--seconds 5] [--idle 200]
"""

import argparse
import asyncio
import warnings

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import crypt
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(os.environ.get("CHATMAIL_BIN_DIR", ROOT / ".build" / "release"))
DOMAIN = "example.org"
USERS = [f"bench{index:04d}@{DOMAIN}" for index in range(50)]
PASSWORD = "password123"
MESSAGE = b"From: a@x\r\nSubject: bench\r\nMessage-ID: <%d@x>\r\n\r\n" + b"x" * 2000 + b"\r\n"
METADATA = (b'A3 GETMETADATA "" (/shared/comment /shared/admin /shared/vendor/deltachat/irohrelay '
            b'/shared/vendor/deltachat/turn /shared/vendor/deltachat/maxsmtprecipients)\r\n')


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listens on {port}")


def pss_kb(pids):
    """Proportional set size of the processes, so that shared pages count once."""
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total += int(line.split()[1])
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            pass
    return total


def process_tree(root_pid):
    children = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (FileNotFoundError, IndexError, ProcessLookupError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    pids, stack = [], [root_pid]
    while stack:
        pid = stack.pop()
        pids.append(pid)
        stack += children.get(pid, [])
    return pids


class Ours:
    name = "chatmail-imap"

    def __init__(self, work: Path, extra: str = "", users=USERS):
        """`extra`: more `[imap]` lines; `users` get PASSWORD."""
        self.port, self.tls_port, self.lmtp_port = free_port(), free_port(), free_port()
        config = work / "imap.conf"
        config.write_text(f"""
[supervisor]
state_dir = "{work}/state"
runtime_dir = "{work}/run"
control_socket = "{work}/run/control.sock"
log_level = "warning"
[imap]
listen = "127.0.0.1:{self.port}"
tls_listen = "127.0.0.1:{self.tls_port}"
lmtp_socket = "{work}/run/lmtp.sock"
lmtp_listen = "127.0.0.1:{self.lmtp_port}"
mail_domain = "{DOMAIN}"
plaintext_login = true
comment = "Chatmail server"
admin = "mailto:root@{DOMAIN}"
max_sessions_per_account = 10000
max_failed_logins_per_minute = 100000
{extra}
[turn]
host = "127.0.0.1"
[iroh]
url = "http://127.0.0.1:3340"
[tls]
self_signed = true
names = ["localhost"]
""")
        for user in users:
            subprocess.run([str(BIN / "chatmailctl"), "user", "add", user, "--password", PASSWORD,
                            "--config", str(config)], check=True, capture_output=True)
        self.process = subprocess.Popen([str(BIN / "chatmail-imap"), "--config", str(config)])
        wait_port(self.port)
        wait_port(self.lmtp_port)

    def pids(self):
        return [self.process.pid]

    def stop(self):
        self.process.terminate()
        self.process.wait(20)


class Dovecot:
    name = "dovecot"

    def __init__(self, work: Path, hashed=None, extra: str = ""):
        """Passwords as `hashed` (with its {SCHEME} prefix), else SHA512-CRYPT; `extra` configuration lines."""
        self.port, self.lmtp_port = free_port(), free_port()
        os.chmod(work, 0o755)
        for name in ("run", "mail", "state"):
            (work / name).mkdir()
        os.chmod(work / "mail", 0o777)
        hashed = hashed or "{SHA512-CRYPT}" + crypt.crypt(PASSWORD, crypt.mksalt(crypt.METHOD_SHA512))
        (work / "passwd").write_text("".join(f"{user}:{hashed}::::::\n" for user in USERS))
        config = work / "dovecot.conf"
        config.write_text(f"""
protocols = imap lmtp
base_dir = {work}/run
state_dir = {work}/state
instance_name = chatmail-bench-{os.getpid()}
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain
log_path = {work}/dovecot.log
first_valid_uid = 1
default_process_limit = 2000
default_client_limit = 10000
default_vsz_limit = 1G
passdb {{
  driver = passwd-file
  args = {work}/passwd
}}
userdb {{
  driver = static
  args = uid=nobody gid=nogroup home={work}/mail/%u
}}
mail_location = maildir:~/Maildir
mail_attribute_dict = file:%h/dovecot-attributes
mail_server_comment = Chatmail server
mail_server_admin = mailto:root@{DOMAIN}
protocol imap {{
  imap_metadata = yes
}}
service imap-login {{
  inet_listener imap {{
    port = {self.port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service lmtp {{
  inet_listener lmtp {{
    address = 127.0.0.1
    port = {self.lmtp_port}
  }}
}}
{extra}
""")
        self.process = subprocess.Popen(["dovecot", "-F", "-c", str(config)])
        wait_port(self.port)
        wait_port(self.lmtp_port)

    def pids(self):
        return process_tree(self.process.pid)

    def stop(self):
        self.process.terminate()
        self.process.wait(20)


async def read_until(reader, prefix):
    """Lines up to and including the first that starts with `prefix` (a tag or a final reply)."""
    data = b""
    while True:
        line = await reader.readuntil(b"\r\n")
        data += line
        if line.startswith(prefix):
            return data


async def one_session(port, user):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    await read_until(reader, b"* OK")
    writer.write(b"A1 LOGIN " + user.encode() + b" " + PASSWORD.encode() + b"\r\n")
    assert b"A1 OK" in await read_until(reader, b"A1 ")
    writer.write(METADATA)
    response = await read_until(reader, b"A3 OK")
    assert b"Chatmail server" in response, response
    writer.write(b"A4 LOGOUT\r\n")
    await read_until(reader, b"A4 OK")
    writer.close()


async def sessions_per_second(port, seconds, parallel=50):
    count = 0
    deadline = time.monotonic() + seconds

    async def worker(index):
        nonlocal count
        while time.monotonic() < deadline:
            await one_session(port, USERS[index % len(USERS)])
            count += 1

    started = time.monotonic()
    await asyncio.gather(*(worker(index) for index in range(parallel)))
    return count / (time.monotonic() - started)


async def lmtp_per_second(port, seconds, parallel=4):
    count = 0
    deadline = time.monotonic() + seconds

    async def worker(index):
        nonlocal count
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        await read_until(reader, b"220")
        writer.write(b"LHLO bench\r\n")
        await read_until(reader, b"250 ")
        while time.monotonic() < deadline:
            user = USERS[(count + index) % len(USERS)]
            writer.write(b"MAIL FROM:<s@elsewhere.org>\r\nRCPT TO:<" + user.encode() + b">\r\nDATA\r\n")
            await read_until(reader, b"354 ")
            writer.write(MESSAGE % count + b".\r\n")
            reply = await reader.readuntil(b"\r\n")
            assert reply.startswith(b"250"), reply
            count += 1
        writer.write(b"QUIT\r\n")
        writer.close()

    started = time.monotonic()
    await asyncio.gather(*(worker(index) for index in range(parallel)))
    return count / (time.monotonic() - started)


async def idle_memory_kb(server, sessions):
    await asyncio.sleep(1)
    before = pss_kb(server.pids())
    connections = []
    for index in range(sessions):
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        await read_until(reader, b"* OK")
        writer.write(b"A1 LOGIN " + USERS[index % len(USERS)].encode() + b" " + PASSWORD.encode() + b"\r\n")
        await read_until(reader, b"A1 OK")
        writer.write(b"A2 SELECT INBOX\r\n")
        await read_until(reader, b"A2 OK")
        writer.write(b"A3 IDLE\r\n")
        await read_until(reader, b"+")
        connections.append(writer)
    await asyncio.sleep(1)
    after = pss_kb(server.pids())
    for writer in connections:
        writer.close()
    return (after - before) / sessions


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--idle", type=int, default=500)
    args = parser.parse_args()
    if shutil.which("dovecot") is None or os.geteuid() != 0:
        sys.exit("needs root and Debian's dovecot-imapd and dovecot-lmtpd (make test-deps)")
    results = {}
    for kind in (Ours, Dovecot):
        work = Path(tempfile.mkdtemp(prefix="imap-bench-", dir="/var/tmp"))
        server = kind(work)
        try:
            print(f"{kind.name}: running", file=sys.stderr, flush=True)
            asyncio.run(one_session(server.port, USERS[0]))  # warm up
            # Memory first: the heavy phases leave allocator arenas behind that blur a delta.
            memory = asyncio.run(idle_memory_kb(server, args.idle))
            results[kind.name] = {
                "sessions/s": asyncio.run(sessions_per_second(server.port, args.seconds)),
                "LMTP deliveries/s": asyncio.run(lmtp_per_second(server.lmtp_port, args.seconds)),
                "KiB per idle session": memory,
            }
        finally:
            server.stop()
            shutil.rmtree(work, ignore_errors=True)
    ours, theirs = results["chatmail-imap"], results["dovecot"]
    print(f"{'':24}{'chatmail-imap':>15}{'dovecot':>12}{'ratio':>10}")
    for key in ours:
        # Higher is better for rates, lower for memory: the ratio is "times better than Dovecot".
        ratio = ours[key] / theirs[key] if "/s" in key else theirs[key] / max(ours[key], 0.001)
        print(f"{key:24}{ours[key]:15.1f}{theirs[key]:12.1f}{ratio:9.2f}x")


if __name__ == "__main__":
    main()
