"""sd_notify: the supervisor's datagrams to a stand-in for systemd's NOTIFY_SOCKET."""

import signal
import time

from conftest import wait_until


def start(supervisor_factory, notify_listener, modes=None, env=None, **kwargs):
    sup = supervisor_factory(modes=modes, env={"NOTIFY_SOCKET": notify_listener.path, **(env or {})}, **kwargs)
    return sup.start()


def test_ready_only_once_the_children_are_ready(supervisor_factory, notify_listener):
    sup = start(supervisor_factory, notify_listener, modes={"turn": "slow", "imap": "slow"})
    ready = wait_until(lambda: notify_listener.with_key("READY"), what="READY=1")
    when, pid, fields = ready[0]
    assert pid == sup.proc.pid, "READY comes from the supervisor itself"
    assert fields["READY"] == "1"
    assert "turn ready" in fields["STATUS"] and "imap ready" in fields["STATUS"]
    # The slow children wrote "ready now" before telling the supervisor; READY=1 came after both.
    assert len([l for l in sup.child_lines() if "ready now" in l]) == 2
    early = [m for m in notify_listener.messages if m[0] < when and "READY" in m[2]]
    assert early == []
    assert any("turn starting" in m[2].get("STATUS", "") for m in notify_listener.messages if m[0] < when)


def test_status_follows_every_change(supervisor_factory, notify_listener):
    sup = start(supervisor_factory, notify_listener)
    wait_until(lambda: notify_listener.with_key("READY"), what="READY=1")
    sup.ctl("disable", "iroh")
    wait_until(lambda: any("iroh disabled" in m[2].get("STATUS", "") for m in notify_listener.messages),
               what="STATUS with iroh disabled")


def test_children_do_not_inherit_notify_socket(supervisor_factory, notify_listener):
    sup = start(supervisor_factory, notify_listener, env={"WATCHDOG_USEC": "5000000"})
    wait_until(lambda: notify_listener.with_key("READY"), what="READY=1")
    started = [l for l in sup.child_lines() if " started " in l]
    assert len(started) == 4
    for line in started:
        assert line.endswith("NOTIFY_SOCKET= WATCHDOG_USEC="), line


def test_watchdog_cadence(supervisor_factory, notify_listener):
    start(supervisor_factory, notify_listener, env={"WATCHDOG_USEC": "400000"})
    wait_until(lambda: len(notify_listener.with_key("WATCHDOG")) >= 8, timeout=15, what="watchdog pings")
    times = [m[0] for m in notify_listener.with_key("WATCHDOG")]
    gaps = [b - a for a, b in zip(times, times[1:])]
    # Half the interval (0.2 s) is the target; the bound only says the pings never lapse.
    assert max(gaps) < 0.4, gaps
    assert all(m[2]["WATCHDOG"] == "1" for m in notify_listener.with_key("WATCHDOG"))


def test_no_watchdog_for_another_pid(supervisor_factory, notify_listener):
    start(supervisor_factory, notify_listener, env={"WATCHDOG_USEC": "200000", "WATCHDOG_PID": "1"})
    wait_until(lambda: notify_listener.with_key("READY"), what="READY=1")
    time.sleep(1)
    assert notify_listener.with_key("WATCHDOG") == []


def test_reload_and_stop_sequence(supervisor_factory, notify_listener):
    sup = start(supervisor_factory, notify_listener)
    wait_until(lambda: notify_listener.with_key("READY"), what="READY=1")
    sup.proc.send_signal(signal.SIGHUP)
    reloading = wait_until(lambda: notify_listener.with_key("RELOADING"), what="RELOADING=1")[0]
    assert reloading[2]["RELOADING"] == "1"
    assert int(reloading[2]["MONOTONIC_USEC"]) > 0, "in the same datagram as RELOADING=1"
    with open("/proc/uptime") as f:  # CLOCK_MONOTONIC is close to uptime on an unsuspended machine
        assert abs(int(reloading[2]["MONOTONIC_USEC"]) / 1e6 - float(f.read().split()[0])) < 60
    wait_until(lambda: [m for m in notify_listener.with_key("READY") if m[0] > reloading[0]], what="READY after reload")
    assert sup.stop() == 0
    stopping = notify_listener.with_key("STOPPING")
    assert len(stopping) == 1 and stopping[0][1] == sup.proc.pid
    assert stopping[0][0] > reloading[0]
