"""The Debian package under a real systemd: `make test-deb` builds the package and runs this.

A clean Debian 12 root without Swift (debootstrap from the Debian archive, cached under
/var/cache/chatmail-tests/) gets the package's dependencies from apt (`apt-get satisfy` on its
Depends), then boots systemd as PID 1 with `systemd-nspawn -b` in a network namespace of its own
(only loopback: the production ports cannot collide with anything on the host). The test drives it
with `nsenter` into the container (no systemd-machined needed on the host) and checks what an
operator relies on: install without start, `systemctl start` returning after READY=1, status, the
services answering, journal identifiers and priorities, the sandbox's exposure score, reload,
the watchdog, upgrade over itself, stop, remove and purge.

Needs root, systemd-nspawn (systemd-container) and debootstrap; CHATMAIL_DEB names the package.
The container's whole journal is kept in /var/cache/chatmail-tests/last-journal.log.
"""

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
CACHE = Path(os.environ.get("CHATMAIL_TEST_CACHE", "/var/cache/chatmail-tests"))
BASE = CACHE / "bookworm-base"
MIRROR = os.environ.get("CHATMAIL_DEBIAN_MIRROR", "http://deb.debian.org/debian")
UNIT = "chatmail.service"
CHILDREN = ["imap", "turn", "iroh", "shadowsocks"]
# `systemd-analyze security` of the unit as packaged, on Debian 12's systemd 252. A change that
# loosens the sandbox raises it; lower it when a change tightens the sandbox.
EXPOSURE = 1.5
# The watchdog as shipped is 30 s; a drop-in shortens it so the test waits seconds, not a minute.
WATCHDOG_SEC = 5
NSPAWN = ["systemd-nspawn", "--quiet", "--register=no", "--keep-unit"]


def _skip_reason():
    if os.geteuid() != 0:
        return "needs root (debootstrap, systemd-nspawn)"
    for tool, package in [("systemd-nspawn", "systemd-container"), ("debootstrap", "debootstrap"),
                          ("dpkg-deb", "dpkg")]:
        if shutil.which(tool) is None:
            return f"{tool} is not installed (apt-get install {package})"
    return None


pytestmark = pytest.mark.skipif(_skip_reason() is not None, reason=_skip_reason() or "")


def run(argv, timeout=300, check=True, **options):
    result = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, **options)
    if check and result.returncode != 0:
        raise AssertionError(f"{argv} exited {result.returncode}\nstdout: {result.stdout}\nstderr: {result.stderr}")
    return result


def package():
    value = os.environ.get("CHATMAIL_DEB")
    if not value:
        pytest.fail("CHATMAIL_DEB is not set: run `make test-deb`, which builds the package first")
    path = Path(value).resolve()
    assert path.is_file(), f"CHATMAIL_DEB={value} does not exist"
    return path


def base_root():
    """The cached clean root: debootstrap minbase plus systemd, with apt's package lists."""
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / "base.lock", "w") as lock:
        import fcntl
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (BASE / "etc" / "os-release").exists():
            work = CACHE / "bookworm-base.new"
            shutil.rmtree(work, ignore_errors=True)
            run(["debootstrap", "--variant=minbase", "--include=systemd,systemd-sysv,dbus",
                 "bookworm", str(work), MIRROR], timeout=1800)
            run(NSPAWN + ["-D", str(work), "apt-get", "update", "-qq"], timeout=600)
            work.rename(BASE)
    return BASE


class Container:
    """A booted copy of the base root; commands run inside through nsenter."""

    def __init__(self, root):
        self.root = root
        self.log = open(root.parent / "console.log", "w")
        self.nspawn = subprocess.Popen(
            NSPAWN + ["--boot", "--private-network", "--console=pipe", "-D", str(root)],
            stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT)
        self.leader = None
        try:
            self._wait_for_boot()
        except BaseException:
            self.nspawn.kill()  # a container that never booted must not outlive the test
            self.nspawn.wait()
            self.log.close()
            raise

    def _wait_for_boot(self):
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and self.leader is None:
            assert self.nspawn.poll() is None, f"systemd-nspawn exited {self.nspawn.returncode}: {self.console()}"
            # nspawn's first child is a helper that execs systemd (or exits): wait for systemd itself.
            for child in run(["pgrep", "-P", str(self.nspawn.pid)], check=False).stdout.split():
                try:
                    if Path(f"/proc/{child}/comm").read_text().strip() == "systemd":
                        self.leader = int(child)
                except OSError:
                    pass
            time.sleep(0.2)
        assert self.leader, "the container's init did not appear"
        # Until systemd has its bus up, systemctl cannot reach it at all (empty answer): ask again.
        state = ""
        while time.monotonic() < deadline + 60 and state not in ("running", "degraded"):
            state = self.sh("systemctl is-system-running --wait", check=False, timeout=120).stdout.strip()
            if state in ("", "offline", "unknown"):
                time.sleep(0.2)
            elif state not in ("running", "degraded"):
                break
        assert state in ("running", "degraded"), f"boot ended {state!r}: {self.sh('systemctl --failed', check=False)}"

    def console(self):
        self.log.flush()
        return (self.root.parent / "console.log").read_text()[-3000:]

    def enter(self, argv, **options):
        return run(["nsenter", "-t", str(self.leader), "-a"] + argv, **options)

    def sh(self, script, **options):
        return self.enter(["/bin/sh", "-c", script], **options)

    def net(self, argv, **options):
        """A host program in the container's network namespace only (host files, container's loopback)."""
        return run(["nsenter", "-t", str(self.leader), "-n"] + argv, **options)

    def show(self, *properties):
        out = self.enter(["systemctl", "show", UNIT, "-p", ",".join(properties)]).stdout
        return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)

    def pids(self):
        """The running chatmail processes by program name (from /proc: the root has no procps)."""
        # comm is cut at 15 characters; argv[0] is whole.
        out = self.sh("for p in /proc/[0-9]*; do c=$(tr '\\0' ' ' < $p/cmdline 2>/dev/null) && "
                      "echo ${p#/proc/} ${c%% *}; done").stdout
        found = (line.split(" ", 1) for line in out.splitlines() if " " in line)
        return {Path(name).name: int(pid) for pid, name in found if Path(name).name.startswith("chatmail")}

    def stop(self):
        if self.nspawn.poll() is None:
            self.enter(["systemctl", "poweroff"], check=False)
            try:
                self.nspawn.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.nspawn.kill()
                self.nspawn.wait()
        self.log.close()


@pytest.fixture(scope="module")
def deb():
    return package()


@pytest.fixture(scope="module")
def box(deb, tmp_path_factory):
    base = base_root()
    work = Path(run(["mktemp", "-d", "-p", str(CACHE), "run.XXXXXX"]).stdout.strip())
    root = work / "root"
    try:
        run(["cp", "-a", "--reflink=auto", str(base), str(root)], timeout=600)
        assert not list(root.glob("usr/lib/**/libswiftCore.so")) and not (root / "usr/bin/swift").exists()
        # The package's Depends from the archive (the downloads are cached beside the base).
        archives = CACHE / "apt-archives"
        (archives / "partial").mkdir(parents=True, exist_ok=True)
        depends = run(["dpkg-deb", "-f", str(deb), "Depends"]).stdout.strip()
        satisfy = NSPAWN + ["-D", str(root), f"--bind={archives}:/var/cache/apt/archives",
                            "--setenv=DEBIAN_FRONTEND=noninteractive"]
        if run(satisfy + ["apt-get", "satisfy", "-y", "-qq", depends], check=False, timeout=900).returncode != 0:
            run(satisfy + ["apt-get", "update", "-qq"], timeout=600)
            run(satisfy + ["apt-get", "satisfy", "-y", "-qq", depends], timeout=900)
        shutil.copy(deb, root / "root" / "chatmail-swift.deb")
        container = Container(root)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    try:
        yield container
    finally:
        # The container's journal outlives it, for a look after a failure.
        journal = container.enter(["journalctl", "--no-pager", "-o", "short-monotonic"], check=False).stdout
        (CACHE / "last-journal.log").write_text(journal)
        container.stop()
        shutil.rmtree(work, ignore_errors=True)


def test_package_contents(deb):
    info = run(["dpkg-deb", "-I", str(deb)]).stdout
    fields = dict(re.findall(r"^ ([A-Z][A-Za-z-]+): (.*)$", info, re.M))
    assert fields["Package"] == "chatmail-swift"
    depends = fields["Depends"]
    for library in ["libc6", "libssl3", "libsqlite3-0", "libsystemd0", "zlib1g"]:
        assert library in depends, depends
    assert "swift" not in depends.lower()
    assert "/etc/chatmail/supervisor.conf" in run(["dpkg-deb", "-I", str(deb), "conffiles"]).stdout
    listing = run(["dpkg-deb", "-c", str(deb)]).stdout
    for path in ["./usr/bin/chatmail-supervisor", "./usr/bin/chatmailctl"] + [
        f"./usr/bin/chatmail-{name}" for name in CHILDREN
    ] + ["./lib/systemd/system/chatmail.service", "./usr/lib/sysusers.d/chatmail.conf",
         "./usr/lib/tmpfiles.d/chatmail.conf", "./etc/chatmail/supervisor.conf"]:
        assert re.search(rf" {re.escape(path)}$", listing, re.M), f"{path} missing:\n{listing}"
    # The Swift runtime is inside the binaries, not a dependency.
    with_swift = run(["sh", "-c", f"dpkg-deb --fsys-tarfile {deb} | tar -xO ./usr/bin/chatmail-imap | "
                                  "strings | grep -c libswiftCore.so || true"]).stdout.strip()
    assert with_swift == "0", "chatmail-imap needs libswiftCore.so"


def test_install_creates_user_and_directories_without_starting(box):
    result = box.enter(["dpkg", "-i", "/root/chatmail-swift.deb"])
    assert "chatmail" in box.enter(["getent", "passwd", "chatmail"]).stdout
    assert box.sh("stat -c '%U:%G %a' /var/lib/chatmail").stdout.strip() == "chatmail:chatmail 750"
    assert box.sh("stat -c '%U:%G %a' /etc/chatmail/supervisor.conf").stdout.strip() == "root:chatmail 640"
    assert box.enter(["systemctl", "is-enabled", UNIT], check=False).stdout.strip() == "disabled", result.stdout
    assert box.enter(["systemctl", "is-active", UNIT], check=False).stdout.strip() == "inactive"
    assert box.show("LoadState")["LoadState"] == "loaded", "postinst did not reload systemd"
    assert not box.pids()
    # The shipped configuration is refused as it stands (no certificate yet): check-config says so.
    assert box.enter(["chatmailctl", "check-config", "/etc/chatmail/supervisor.conf"], check=False).returncode != 0


TEST_CONFIG_EDITS = [
    # No Postfix in the container: its sockets go to the runtime directory.
    ('"/var/spool/postfix/chatmail/lmtp.sock"', '"/run/chatmail/lmtp.sock"'),
    ('"/var/spool/postfix/chatmail/auth"', '"/run/chatmail/auth"'),
    # A generated certificate instead of Let's Encrypt files.
    ('certificate = "/etc/chatmail/tls/fullchain.pem"', ""),
    ('key = "/etc/chatmail/tls/privkey.pem"', ""),
    ("self_signed = false", "self_signed = true"),
    ('names = ["chat.example.org"]\n', 'names = ["chat.example.org"]\naddresses = ["127.0.0.1"]\n'),
]


def configure(box, extra=""):
    text = (box.root / "etc/chatmail/supervisor.conf").read_text()
    for old, new in TEST_CONFIG_EDITS:
        assert old in text, old
        text = text.replace(old, new, 1)
    (box.root / "etc/chatmail/supervisor.conf").write_text(text + extra)
    return text + extra


def test_start_returns_after_ready(box):
    configure(box)
    box.enter(["chatmailctl", "check-config", "/etc/chatmail/supervisor.conf"])
    # A short watchdog for the watchdog test below (the unit ships 30 s).
    dropin = box.root / "etc/systemd/system/chatmail.service.d"
    dropin.mkdir(parents=True)
    (dropin / "watchdog.conf").write_text(f"[Service]\nWatchdogSec={WATCHDOG_SEC}s\n")
    box.enter(["systemctl", "daemon-reload"])
    box.enter(["systemctl", "start", UNIT], timeout=120)
    # `start` of a Type=notify unit returns only after READY=1: everything is ready by now.
    state = box.show("ActiveState", "SubState", "StatusText")
    assert state["ActiveState"] == "active" and state["SubState"] == "running", state
    assert all(f"{name} ready" in state["StatusText"] for name in CHILDREN), state
    status = box.enter(["chatmailctl", "status"]).stdout
    assert all(re.search(rf"^{name}\s+ready", status, re.M) for name in CHILDREN), status


def test_status_shows_the_children(box):
    status = box.enter(["systemctl", "status", "--no-pager", "--lines=0", UNIT], check=False).stdout
    assert "Active: active (running)" in status, status
    for name in ["chatmail-supervisor"] + [f"chatmail-{name}" for name in CHILDREN]:
        assert f"/usr/bin/{name} --config /etc/chatmail/supervisor.conf" in status, status


def test_services_answer(box):
    link = box.enter(["chatmailctl", "shadowsocks", "url"]).stdout.strip()
    result = box.net([sys.executable, str(HERE / "probe.py"), "imap", "imaps=abcdefghi@chat.example.org s3cretpass1",
                      "turn", "turn_tcp", f"shadowsocks={link}"], check=False, timeout=120)
    print(result.stdout)
    assert result.returncode == 0, result.stdout + result.stderr


# Found by this test: as user chatmail the iroh child reset every connection on 3340 and 443 (and
# TURN its TCP ones): TCP_NODELAY was set as a SOL_SOCKET option, i.e. SO_DEBUG, which needs
# CAP_NET_ADMIN; as root it passed.
def test_iroh_answers(box):
    result = box.net([sys.executable, str(HERE / "probe.py"), "iroh"], check=False, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_each_child_logs_under_its_own_identifier(box):
    imap = box.enter(["journalctl", "-t", "chatmail-imap", "--no-pager", "-o", "cat"]).stdout
    assert "IMAP listening" in imap, imap
    assert "chatmail-turn" not in imap and "TURN" not in imap, imap
    turn = box.enter(["journalctl", "-t", "chatmail-turn", "--no-pager", "-o", "cat"]).stdout
    assert turn.strip() and "IMAP listening" not in turn, turn
    # Priorities: an unexpected exit is a warning; "ready" lines are info and filtered out.
    box.sh("kill -9 $(cat /proc/[0-9]*/stat 2>/dev/null | awk '$2==\"(chatmail-iroh)\"{print $1}')")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and "iroh ready" not in box.show("StatusText")["StatusText"]:
        time.sleep(0.5)
    time.sleep(1)
    warnings = box.enter(["journalctl", "-t", "chatmail-supervisor", "-p", "warning", "--no-pager", "-o", "cat"]).stdout
    assert "iroh exited unexpectedly" in warnings, warnings
    assert "is ready" not in warnings, warnings
    assert "iroh ready" in box.show("StatusText")["StatusText"]


def test_security_exposure(box):
    out = box.enter(["systemd-analyze", "security", "--no-pager", UNIT]).stdout
    score = float(re.search(r"Overall exposure level for chatmail\.service: ([0-9.]+)", out).group(1))
    print(f"systemd-analyze security chatmail: {score}")
    assert score <= EXPOSURE, out[-2000:]


def test_reload_restarts_only_the_changed_child(box):
    before = box.pids()
    assert set(before) >= {"chatmail-supervisor"} | {f"chatmail-{name}" for name in CHILDREN}, before
    text = (box.root / "etc/chatmail/supervisor.conf").read_text()
    assert "credential_ttl = 432000" in text
    (box.root / "etc/chatmail/supervisor.conf").write_text(text.replace("credential_ttl = 432000",
                                                                        "credential_ttl = 86400"))
    box.enter(["systemctl", "reload", UNIT])
    deadline = time.monotonic() + 30
    after = box.pids()
    while time.monotonic() < deadline and after.get("chatmail-turn") in (None, before["chatmail-turn"]):
        time.sleep(0.5)
        after = box.pids()
    assert after["chatmail-turn"] != before["chatmail-turn"], "turn was not restarted"
    for name in ["chatmail-supervisor", "chatmail-imap", "chatmail-iroh", "chatmail-shadowsocks"]:
        assert after[name] == before[name], f"{name} was restarted too"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and "turn ready" not in box.show("StatusText")["StatusText"]:
        time.sleep(0.5)
    assert box.show("ActiveState")["ActiveState"] == "active"


def test_watchdog_restarts_a_stopped_supervisor(box):
    before = box.show("MainPID", "NRestarts")
    main = int(before["MainPID"])
    box.enter(["kill", "-STOP", str(main)])
    deadline = time.monotonic() + WATCHDOG_SEC + 60
    state = box.show("MainPID", "NRestarts", "ActiveState", "StatusText")
    while time.monotonic() < deadline and not (
        state["ActiveState"] == "active" and int(state["MainPID"]) not in (0, main)
        and all(f"{name} ready" in state["StatusText"] for name in CHILDREN)
    ):
        time.sleep(1)
        state = box.show("MainPID", "NRestarts", "ActiveState", "StatusText")
    assert int(state["NRestarts"]) == int(before["NRestarts"]) + 1, state
    assert int(state["MainPID"]) != main, state
    journal = box.enter(["journalctl", "-u", UNIT, "--no-pager", "-o", "cat"]).stdout
    assert "Watchdog timeout" in journal, journal[-2000:]


def test_upgrade_keeps_the_conffile_and_restarts(box):
    conf = (box.root / "etc/chatmail/supervisor.conf").read_text()
    main = box.show("MainPID")["MainPID"]
    box.enter(["dpkg", "-i", "/root/chatmail-swift.deb"], timeout=300)
    assert (box.root / "etc/chatmail/supervisor.conf").read_text() == conf
    state = box.show("MainPID", "ActiveState", "StatusText")
    assert state["ActiveState"] == "active" and state["MainPID"] != main, state
    assert all(f"{name} ready" in state["StatusText"] for name in CHILDREN), state


def test_stop_leaves_no_process(box):
    box.enter(["systemctl", "stop", UNIT], timeout=120)
    assert box.show("ActiveState")["ActiveState"] == "inactive"
    assert not box.pids()


def test_remove_and_purge(box):
    box.enter(["systemctl", "start", UNIT], timeout=120)
    box.enter(["dpkg", "-r", "chatmail-swift"], timeout=300)
    assert not box.pids(), "remove left processes"
    assert not (box.root / "usr/bin/chatmail-supervisor").exists()
    assert (box.root / "etc/chatmail/supervisor.conf").exists(), "remove must keep the conffile"
    box.enter(["dpkg", "-P", "chatmail-swift"], timeout=300)
    assert not (box.root / "etc/chatmail").exists()
    assert not (box.root / "var/lib/chatmail").exists()
    assert box.enter(["dpkg-query", "-W", "chatmail-swift"], check=False).returncode != 0
