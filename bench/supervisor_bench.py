#!/usr/bin/env python3
"""Supervisor figures (issue: supervisor and control channel).

- crash to ready: a child is SIGKILLed; time until its replacement has reported ready, read
  from the supervisor's sd_notify STATUS datagrams. The backoff is set to 1 ms, so what remains
  is the supervisor's reaction plus the child's own start (a bash script; its start alone is
  measured too, for reference). Median over 50 kills.
- the supervisor's resident memory with four children running.
- one discovery request's round trip on a control connection (median of 1000).

There is no anchor to run side by side here: systemd is not PID 1 on these machines. The
figures stand alone; timings vary with the machine's load, so compare runs on one machine.
"""

import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "Tests" / "integration"))
from conftest import FAKE_CHILD, NotifyListener, Supervisor, wait_until  # noqa: E402

KILLS = 50


def turn_ready_after(listener, since):
    for when, _, fields in listener.messages:
        if when > since and "turn ready" in fields.get("STATUS", ""):
            return when
    return None


def main():
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        listener = NotifyListener(tmp / "notify.sock")
        sup = Supervisor(tmp, env={"NOTIFY_SOCKET": listener.path},
                         supervisor_extra="restart_delay_min = 0.001\nrestart_delay_max = 0.001\n"
                                          "stable_after = 0.001\ncrash_loop_limit = 1000\nlog_level = \"warning\"")
        try:
            sup.start()
            wait_until(lambda: listener.with_key("READY"), what="READY=1")
            pid = sup.status()["turn"]["pid"]
            samples = []
            for _ in range(KILLS):
                before = time.monotonic()
                os.kill(pid, signal.SIGKILL)
                ready = wait_until(lambda: turn_ready_after(listener, before), timeout=10, interval=0.001,
                                   what="turn ready again")
                samples.append(ready - before)
                pid = sup.status()["turn"]["pid"]
            rss_kib = int(next(l.split()[1] for l in open(f"/proc/{sup.proc.pid}/status") if l.startswith("VmRSS")))

            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                s.connect(sup.socket)
                reader = s.makefile("rb")
                rtts = []
                for i in range(1000):
                    start = time.perf_counter()
                    s.sendall(json.dumps({"id": i, "type": "discovery"}).encode() + b"\n")
                    answer = json.loads(reader.readline())
                    rtts.append(time.perf_counter() - start)
                    assert answer["ok"] and "turn" in answer["discovery"], answer
        finally:
            sup.cleanup()
            listener.close()

    # The child's own start, without a supervisor: bash running fake-child.sh up to its ready line.
    child_start = []
    for _ in range(20):
        a, b = socket.socketpair()
        os.set_inheritable(b.fileno(), True)
        start = time.monotonic()
        proc = subprocess.Popen(["bash", "-c", f'exec 3>&{b.fileno()}; exec "$0" ready', str(FAKE_CHILD)],
                                env=dict(os.environ, CHATMAIL_CONTROL_FD="3", CHATMAIL_CHILD_NAME="turn"),
                                pass_fds=(b.fileno(),))
        reader = a.makefile("rb")
        while b'"ready"' not in reader.readline():
            pass
        child_start.append(time.monotonic() - start)
        proc.kill()
        proc.wait()
        a.close()
        b.close()

    ms = lambda seconds: f"{seconds * 1000:.1f} ms"  # noqa: E731
    print(f"crash to replacement ready, median of {KILLS} (1 ms backoff): {ms(statistics.median(samples))}"
          f"  (p90 {ms(sorted(samples)[int(KILLS * 0.9)])})")
    print(f"  of which the bash child's own start, median of 20:       {ms(statistics.median(child_start))}")
    print(f"supervisor resident memory with 4 children:               {rss_kib / 1024:.1f} MiB")
    print(f"discovery round trip, median of 1000 on one connection:   {statistics.median(rtts) * 1e6:.0f} µs"
          f"  (p99 {sorted(rtts)[989] * 1e6:.0f} µs)")


if __name__ == "__main__":
    main()
