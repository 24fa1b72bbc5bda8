"""The real supervisor binary with fake children: restarts, waits, toggles, reload, shutdown."""

import base64
import hashlib
import hmac
import os
import signal
import shutil
import sqlite3
import tempfile
import time

import pytest

from conftest import alive, wait_until


def test_killed_child_is_back_within_its_backoff(supervisor_factory):
    sup = supervisor_factory().start()
    old = sup.wait_state("turn", "ready")["pid"]
    os.kill(old, signal.SIGKILL)
    new = wait_until(lambda: (s := sup.status()["turn"])["state"] == "ready" and s["pid"] != old and s,
                     timeout=5, what="a new turn process")
    assert new["restarts"] == 1
    assert new["last_exit"] == "signal 9 (KILL)"
    assert not alive(old)


def test_child_that_never_gets_ready_is_reported_and_retried(supervisor_factory):
    sup = supervisor_factory(modes={"iroh": "never-ready"}, supervisor_extra="ready_timeout = 1").start()
    assert sup.status()["iroh"]["state"] == "starting"
    status = wait_until(lambda: (s := sup.status()["iroh"])["message"] and s, timeout=5, what="a report")
    assert "not ready within 1.0 s" in status["message"]
    wait_until(lambda: sup.status()["iroh"]["restarts"] >= 1, timeout=8, what="a retry")
    assert sup.status()["iroh"]["last_exit"] == "exit 0"  # it took SIGTERM through its trap


def test_restart_wait_returns_once_the_new_process_is_ready(supervisor_factory):
    sup = supervisor_factory(modes={"turn": "slow"}).start()
    old = sup.wait_state("turn", "ready")["pid"]
    started = time.monotonic()
    result = sup.ctl("restart", "turn", "--wait")
    took = time.monotonic() - started
    status = sup.status()["turn"]
    assert status["state"] == "ready" and status["pid"] != old
    assert f"pid {status['pid']}" in result.stdout
    assert took >= 1.0, "the slow child needs a second to get ready; --wait must cover it"
    assert any(line.startswith(f"turn {status['pid']} ready now") for line in sup.child_lines())


def test_stop_and_start_wait(supervisor_factory):
    sup = supervisor_factory().start()
    pid = sup.wait_state("shadowsocks", "ready")["pid"]
    sup.ctl("stop", "shadowsocks", "--wait")
    assert sup.status()["shadowsocks"]["state"] == "stopped"
    assert not alive(pid)
    time.sleep(0.5)
    assert sup.status()["shadowsocks"]["state"] == "stopped", "an operator stop is not undone by the restart policy"
    sup.ctl("start", "shadowsocks", "--wait")
    assert sup.status()["shadowsocks"]["state"] == "ready"


def test_disable_stops_it_and_survives_a_supervisor_restart(supervisor_factory):
    sup = supervisor_factory().start()
    pid = sup.wait_state("iroh", "ready")["pid"]
    assert "iroh disabled" in sup.ctl("disable", "iroh").stdout
    wait_until(lambda: not alive(pid), what="iroh to exit")
    assert sup.status()["iroh"]["state"] == "disabled"
    assert sup.stop() == 0

    starts_before = len([l for l in sup.child_lines("iroh") if " started " in l])
    sup.start()
    sup.wait_state("turn", "ready")
    time.sleep(0.5)
    assert sup.status()["iroh"]["state"] == "disabled"
    assert len([l for l in sup.child_lines("iroh") if " started " in l]) == starts_before
    with sqlite3.connect(sup.tmp / "state" / "state.db") as db:
        assert db.execute("SELECT value FROM settings WHERE key = '__IROH_ENABLED__'").fetchone() == ("false",)

    sup.ctl("enable", "iroh")
    sup.wait_state("iroh", "ready")


def test_sighup_applies_enabled_and_restarts_only_changed_children(supervisor_factory):
    sup = supervisor_factory(modes={"shadowsocks": None}).start()
    imap = sup.wait_state("imap", "ready")["pid"]
    turn = sup.wait_state("turn", "ready")["pid"]
    assert sup.status()["shadowsocks"]["state"] == "disabled"

    sup.write_config({}, extra={"turn": ["stop_timeout = 2"]})
    sup.proc.send_signal(signal.SIGHUP)
    sup.wait_state("shadowsocks", "ready")
    wait_until(lambda: (s := sup.status()["turn"])["state"] == "ready" and s["pid"] != turn, what="turn restarted")
    assert sup.status()["imap"]["pid"] == imap, "imap's settings did not change"
    assert any('"type":"reload"' in l for l in sup.child_lines("imap")), "children are told about the reload"


def test_reload_with_a_broken_config_changes_nothing(supervisor_factory):
    sup = supervisor_factory().start()
    turn = sup.wait_state("turn", "ready")["pid"]
    sup.config.write_text(sup.config.read_text().replace('listen = "127.0.0.1:23478"', 'listen = "127.0.0.1:23478"\nbogus = 1'))
    result = sup.ctl("reload", check=False)
    assert result.returncode == 1 and "nothing changed" in result.stderr
    assert "[turn] bogus: unknown key" in result.stderr
    assert sup.status()["turn"]["pid"] == turn
    assert sup.proc.poll() is None


def test_sigterm_stops_imap_first_and_leaves_no_process_behind(supervisor_factory):
    sup = supervisor_factory(modes={"iroh": "family", "turn": "stubborn"},
                             extra={"turn": ["stop_timeout = 1"]}).start()
    for name in ["imap", "turn", "iroh", "shadowsocks"]:
        sup.wait_state(name, "ready")
    pids = sup.child_pids()
    assert len(pids) == 5, sup.child_lines()
    assert sup.stop() == 0
    assert [pid for pid in pids if alive(pid)] == []
    terms = [l.split()[0] for l in sup.child_lines() if l.endswith(" TERM")]
    assert terms[0] == "imap", terms
    assert any("ignoring TERM" in l for l in sup.child_lines("turn")), "the stubborn child was SIGKILLed"
    assert not (sup.tmp / "run" / "control.sock").exists()


def test_exit_78_is_not_retried_until_reload(supervisor_factory):
    sup = supervisor_factory(modes={"shadowsocks": "exit78"}).start()
    sup.wait_state("shadowsocks", "config error")
    time.sleep(1)
    status = sup.status()["shadowsocks"]
    assert status["state"] == "config error" and status["restarts"] == 0
    assert len([l for l in sup.child_lines("shadowsocks") if "started" in l]) == 1
    sup.ctl("reload")
    wait_until(lambda: len([l for l in sup.child_lines("shadowsocks") if "started" in l]) == 2, what="a retry")


def test_missing_program_shows_as_not_installed(supervisor_factory, tmp_path):
    sup = supervisor_factory(modes={"iroh": f"{tmp_path}/no-such-program"}).start()
    status = sup.wait_state("iroh", "not installed")
    assert "no-such-program is not installed" in status["message"]
    assert status["pid"] is None


def test_crash_loop_is_shown(supervisor_factory):
    sup = supervisor_factory(modes={"turn": "exit-now"},
                             supervisor_extra="crash_loop_limit = 3\nrestart_delay_max = 0.3")
    sup.start()
    status = wait_until(lambda: (s := sup.status()["turn"])["crash_looping"] and s, timeout=10, what="crash loop")
    assert status["restarts"] >= 2
    assert "(crash loop)" in sup.ctl("status").stdout


def discovery_secret(sup):
    with sqlite3.connect(sup.tmp / "state" / "state.db") as db:
        return [r[0] for r in db.execute("SELECT secret FROM turn_secrets ORDER BY id DESC")]


def check_turn_value(value, secret, ttl=5 * 86400):
    host, port, expiry, password = value.split(":")
    assert (host, port) == ("turn.example.org", "23478")
    assert abs(int(expiry) - (time.time() + ttl)) < 60
    expected = base64.b64encode(hmac.new(secret.encode(), expiry.encode(), hashlib.sha1).digest()).decode()
    assert password == expected


def test_discovery_lists_only_enabled_ready_sidecars(supervisor_factory):
    sup = supervisor_factory(modes={"iroh": "never-ready"}).start()
    sup.wait_state("turn", "ready")
    answer = sup.request({"id": 7, "type": "discovery"})
    assert answer["id"] == 7 and answer["ok"]
    assert "iroh_relay" not in answer["discovery"], "iroh is not ready"
    secret = discovery_secret(sup)[0]
    check_turn_value(answer["discovery"]["turn"], secret)
    assert secret not in str(answer)

    # The IMAP child asks over its inherited channel, as chatmail-imap will.
    os.kill(sup.wait_state("imap", "ready")["pid"], signal.SIGUSR1)
    line = wait_until(lambda: [l for l in sup.child_lines("imap") if '"discovery"' in l], what="imap's answer")[0]
    assert '"turn":"turn.example.org:23478:' in line

    sup.ctl("disable", "turn")
    assert "turn" not in sup.request({"id": 8, "type": "discovery"})["discovery"]
    sup.write_config({})  # iroh becomes a normal child
    sup.ctl("reload")
    sup.ctl("enable", "turn")
    sup.wait_state("turn", "ready")
    sup.wait_state("iroh", "ready")
    answer = sup.request({"id": 9, "type": "discovery"})["discovery"]
    assert answer["iroh_relay"] == "http://127.0.0.1:23340"
    check_turn_value(answer["turn"], secret)


def test_turn_child_gets_secrets_and_rotation(supervisor_factory):
    sup = supervisor_factory().start()
    sup.wait_state("turn", "ready")
    first = discovery_secret(sup)
    assert len(first) == 1 and len(first[0]) == 43, "32 random bytes as base64url"
    wait_until(lambda: any(f'"secrets":["{first[0]}"]' in l for l in sup.child_lines("turn")), what="secrets push")
    assert not any("secrets" in l for l in sup.child_lines("imap")), "only TURN gets the secret"
    sup.ctl("turn", "rotate-secret")
    rotated = discovery_secret(sup)
    assert rotated[1] == first[0] and rotated[0] != first[0]
    wait_until(lambda: any(f'"secrets":["{rotated[0]}","{first[0]}"]' in l for l in sup.child_lines("turn")),
               what="the rotated secrets")
    sup.ctl("turn", "rotate-secret")
    # Credentials minted under the first secret are still live (credential_ttl has not passed), so
    # every secret stays and TURN gets all three (issue 12: after two rotations the first got 401).
    third = discovery_secret(sup)
    assert third[1:] == rotated and len(third) == 3, "every secret whose credentials may be live is kept"
    wait_until(lambda: any(f'"secrets":["{third[0]}","{rotated[0]}","{first[0]}"]' in l
                           for l in sup.child_lines("turn")), what="all three secrets pushed")
    assert first[0] not in open(sup.log).read(), "secrets never appear in the log"


def test_cli_errors_are_clear(supervisor_factory):
    sup = supervisor_factory().start()
    result = sup.ctl("restart", "nope", check=False)
    assert result.returncode == 1 and 'unknown sidecar "nope"' in result.stderr
    result = sup.ctl("disable", "imap", check=False)
    assert result.returncode == 1 and "cannot be toggled" in result.stderr
    sup.ctl("disable", "turn")
    result = sup.ctl("start", "turn", check=False)
    assert result.returncode == 1 and "disabled; enable it first" in result.stderr
    assert sup.request({"id": 1, "type": "ready"})["ok"] is False
    assert sup.request({"id": 2, "type": "launch-missiles"})["error"].startswith("bad request")
    assert sup.stop() == 0
    result = sup.ctl("status", check=False)
    assert result.returncode == 69 and "not running" in result.stderr


def test_second_supervisor_on_the_same_socket_is_refused(supervisor_factory):
    sup = supervisor_factory().start()
    sup.wait_state("turn", "ready")
    import subprocess
    from conftest import bin_dir
    second = subprocess.run([str(bin_dir() / "chatmail-supervisor"), "--config", str(sup.config)],
                            capture_output=True, text=True, timeout=30)
    assert second.returncode == 1 and "another supervisor is already running" in second.stdout + second.stderr
    assert sup.status()["turn"]["state"] == "ready"


def test_bad_config_exits_78_with_file_and_line(supervisor_factory):
    sup = supervisor_factory()
    sup.config.write_text(sup.config.read_text() + "\n[turn]\nbogus = 1\n")
    sup.config.write_text('[supervisor]\nstate_dir = "state"\n\n[turn]\ncredential_ttl = "long"\nbogus = 2\n')
    import subprocess
    from conftest import bin_dir
    run = subprocess.run([str(bin_dir() / "chatmail-supervisor"), "--config", str(sup.config)],
                         capture_output=True, text=True, timeout=30)
    assert run.returncode == 78
    assert f"{sup.config}:5: [turn] credential_ttl: expected an integer" in run.stderr
    assert f"{sup.config}:6: [turn] bogus: unknown key" in run.stderr
    check = sup.ctl("check-config", str(sup.config), check=False)
    assert check.returncode == 1 and "[turn] bogus: unknown key" in check.stderr


def test_chatmailctl_options_before_or_after_the_subcommand(tmp_path):
    """Binds nothing: the options are seen to be used by where the commands look (socket, file)."""
    import subprocess
    from conftest import bin_dir
    config = tmp_path / "c.conf"
    config.write_text(f'[supervisor]\nstate_dir = "{tmp_path}/state"\ncontrol_socket = "{tmp_path}/none.sock"\n')

    def ctl(*args):
        return subprocess.run([str(bin_dir() / "chatmailctl"), *args], capture_output=True, text=True, timeout=30)

    for args in (["--config", str(config), "status"], ["status", "--config", str(config)],
                 [f"--config={config}", "turn", "rotate-secret"], ["--socket", f"{tmp_path}/none.sock", "reload"]):
        result = ctl(*args)
        assert result.returncode == 69 and f"{tmp_path}/none.sock" in result.stderr, (args, result.stderr)
    # check-config takes the file as an argument or as --config, before or after it; the file is really read.
    for args in (["check-config", str(config)], ["check-config", "--config", str(config)],
                 ["--config", str(config), "check-config"]):
        result = ctl(*args)
        assert result.returncode == 1 and f"{config}: [turn] host: required" in result.stderr, (args, result.stderr)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run chatmailctl as another user (CI runs as root)")
def test_other_uid_is_refused_on_the_control_socket(supervisor_factory):
    public_dir = tempfile.mkdtemp(prefix="chatmail-uid-test-")
    try:
        os.chmod(public_dir, 0o755)
        sup = supervisor_factory(supervisor_extra=f'control_socket = "{public_dir}/control.sock"').start()
        sup.wait_state("turn", "ready")
        os.chmod(sup.socket, 0o666)  # past the file mode: only SO_PEERCRED stands in the way
        result = sup.ctl("status", "--socket", sup.socket, check=False, user=65534, config=False)
        assert result.returncode != 0, result.stdout
        assert "uid=65534" in wait_until(
            lambda: [l for l in open(sup.log) if "refused a control connection" in l], what="the log line")[0]
        assert sup.ctl("status").returncode == 0, "root still gets in"
    finally:
        sup.cleanup()
        shutil.rmtree(public_dir, ignore_errors=True)
