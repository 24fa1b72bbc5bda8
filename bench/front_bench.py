#!/usr/bin/env python3
"""The port-443 front (issue 18): chatmail-iroh's TLS listener routing ALPN `imap` beside nginx's `stream` module
with `ssl_preread` doing the same routing (Debian's nginx, one worker process, unprivileged, loopback), one run:

- added latency of the ALPN route to IMAP: connect, TLS handshake (ALPN imap) and IMAP greeting, p50/p99, directly
  to chatmail-imap's TLS port, and through our front and through nginx, each both with a PROXY header to IMAP's
  `proxy_tls_listen` (ours v2, as deployed; nginx's `proxy_protocol on` speaks only v1, which that listener also
  reads) and without one to the TLS port; same client code, interleaved;
- the front's CPU per routed connection (over the same greetings);
- bulk MB per front CPU-second through the route, both directions: a real ClientHello asking for `imap`, then raw
  bytes, to an upstream that reads the PROXY header (v1 from nginx, v2 from ours) and discards (upload) or sends
  (download) a bounded amount; the front's CPU (from /proc: every thread of our process, nginx's worker and master) is what
  counts, the client and the upstream are other processes.

    CHATMAIL_BIN_DIR=.build/release python3 bench/front_bench.py [--samples 400] [--megabytes 512] [--rounds 3]
"""

import argparse
import os
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve()
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE.parents[1] / "Tests" / "integration"))
from imap_bench import BIN, Ours, free_port, process_tree, wait_port  # noqa: E402
from iroh_bench import percentile  # noqa: E402
from test_front import write_front_config  # noqa: E402
from tls_bench import cpu_seconds as ticks_cpu_seconds  # noqa: E402

NGINX_STREAM_MODULE = "/usr/lib/nginx/modules/ngx_stream_module.so"
WARM_UP = 20

# The upstream of the bulk runs, a process of its own (so that it does not take the client's interpreter lock): reads
# a PROXY header (v2 binary, v1 text, or none), then an 8-byte big-endian count and a direction byte, then either
# reads and drops that many bytes ("u") or sends them ("d"), then answers "done" and closes.
SINK = r"""
import socket, sys, threading
V2 = b"\r\n\r\n\x00\r\nQUIT\n"

def read_exactly(connection, count, pending):
    while len(pending) < count:
        chunk = connection.recv(65536)
        if not chunk:
            raise EOFError
        pending += chunk
    return pending[:count], pending[count:]

def serve(connection):
    with connection:
        pending = b""
        first, pending = read_exactly(connection, 12, pending)
        if first == V2:
            length, pending = read_exactly(connection, 4, pending)
            _, pending = read_exactly(connection, int.from_bytes(length[2:], "big"), pending)
        elif first.startswith(b"PROXY "):
            pending = first + pending
            while b"\r\n" not in pending:
                pending += connection.recv(256)
            pending = pending.split(b"\r\n", 1)[1]
        else:
            pending = first + pending
        # The ClientHello the front read (a TLS record: 5-byte header and its length), then the request.
        head, pending = read_exactly(connection, 5, pending)
        _, pending = read_exactly(connection, int.from_bytes(head[3:5], "big"), pending)
        request, pending = read_exactly(connection, 9, pending)
        count, direction = int.from_bytes(request[:8], "big"), request[8:9]
        if direction == b"u":
            count -= len(pending)
            buffer = bytearray(1 << 20)
            while count > 0:
                got = connection.recv_into(buffer)
                if not got:
                    raise EOFError
                count -= got
        else:
            block = bytes(1 << 20)
            while count > 0:
                connection.sendall(block[:min(count, len(block))])
                count -= min(count, len(block))
        connection.sendall(b"done")

listener = socket.create_server(("127.0.0.1", 0))
print(listener.getsockname()[1], flush=True)
while True:
    connection, _ = listener.accept()
    threading.Thread(target=serve, args=(connection,), daemon=True).start()
"""


def cpu_seconds(pid):
    """CPU time of the threads of `pid` so far: the scheduler's nanosecond count (/proc/<pid>/task/*/schedstat;
    utime+stime of /proc/<pid>/stat count 10 ms ticks, too coarse for a few hundred connections), else the ticks."""
    if not Path(f"/proc/{pid}/schedstat").exists():
        return ticks_cpu_seconds(pid)
    total = 0
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            total += int(Path(f"/proc/{pid}/task/{task}/schedstat").read_text().split()[0])
        except (FileNotFoundError, ProcessLookupError):  # a thread that ended meanwhile
            pass
    return total / 1e9


def client_hello(alpn="imap"):
    """A ClientHello of Python's OpenSSL asking for `alpn` (one TLS record), made without a socket."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.set_alpn_protocols([alpn])
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = context.wrap_bio(incoming, outgoing, server_hostname="localhost")
    try:
        tls.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return outgoing.read()


class Imap(Ours):
    """chatmail-imap with its TLS port and its PROXY-v2 TLS listener; no accounts (the bench reads greetings)."""

    def __init__(self, work: Path):
        work.mkdir()
        self.proxy_port = free_port()
        super().__init__(work, f'proxy_tls_listen = "127.0.0.1:{self.proxy_port}"', users=[])
        wait_port(self.tls_port)
        wait_port(self.proxy_port)


class OurFront:
    """chatmail-iroh with its HTTPS listener the front, ALPN imap to `upstream`."""

    def __init__(self, work: Path, upstream: int, proxy_protocol=True):
        work.mkdir()
        self.port = free_port()
        config = work / "front.conf"
        extra = {} if proxy_protocol else {"upstream_proxy_protocol": "false"}
        write_front_config(config, free_port(), self.port, imap_upstream=upstream, **extra)
        config.write_text(config.read_text().replace('log_level = "debug"', 'log_level = "warning"'))
        self.process = subprocess.Popen([str(BIN / "chatmail-iroh"), "--config", str(config)])
        wait_port(self.port)

    def cpu(self):
        return cpu_seconds(self.process.pid)

    def threads(self):
        return len(os.listdir(f"/proc/{self.process.pid}/task"))

    def stop(self):
        self.process.terminate()
        self.process.wait(20)


class Nginx:
    """Debian's nginx, `stream` with `ssl_preread`: ALPN imap to `upstream` (with a PROXY header when
    `proxy_protocol`), anything else closed; one worker process; as nobody when started as root."""

    def __init__(self, work: Path, upstream: int, proxy_protocol: bool):
        work.mkdir(mode=0o777)
        os.chmod(work, 0o777)
        self.port = free_port()
        config = work / "nginx.conf"
        config.write_text(f"""
load_module {NGINX_STREAM_MODULE};
worker_processes 1;
daemon off;
pid {work}/nginx.pid;
error_log {work}/error.log warn;
events {{
    worker_connections 4096;
}}
stream {{
    map $ssl_preread_alpn_protocols $upstream {{
        ~\\bimap\\b 127.0.0.1:{upstream};
        default 127.0.0.1:1;
    }}
    server {{
        listen 127.0.0.1:{self.port};
        ssl_preread on;
        proxy_pass $upstream;
        proxy_protocol {"on" if proxy_protocol else "off"};
    }}
}}
""")
        command = ["nginx", "-p", str(work), "-c", str(config), "-e", str(work / "error.log")]
        if os.geteuid() == 0:
            command = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"] + command
        self.process = subprocess.Popen(command)
        wait_port(self.port)
        deadline = time.monotonic() + 10
        while not self.workers() and time.monotonic() < deadline:
            time.sleep(0.05)

    def workers(self):
        return [pid for pid in process_tree(self.process.pid) if pid != self.process.pid]

    def cpu(self):
        return sum(cpu_seconds(pid) for pid in process_tree(self.process.pid))

    def stop(self):
        self.process.terminate()
        self.process.wait(20)


def greeting_seconds(port, context):
    """Connect, TLS handshake asking for ALPN imap, the IMAP greeting: seconds."""
    started = time.perf_counter()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with context.wrap_socket(raw, server_hostname="localhost") as tls:
            greeting = tls.recv(4096)
            elapsed = time.perf_counter() - started
    assert greeting.startswith(b"* OK"), greeting
    return elapsed


def latency(routes, samples):
    """{name: [seconds]} over `routes` ({name: port}), interleaved so that load changes hit every route alike."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.set_alpn_protocols(["imap"])
    for port in routes.values():
        for _ in range(WARM_UP):
            greeting_seconds(port, context)
    results = {name: [] for name in routes}
    names = list(routes)
    for index in range(samples):
        for name in names[index % len(names):] + names[:index % len(names)]:
            results[name].append(greeting_seconds(routes[name], context))
    return results


def bulk(port, front, size, direction, hello):
    """Pushes `size` bytes through the front at `port` (upload: to the upstream; download: from it); returns the
    front's CPU seconds and the wall seconds it took."""
    block = bytes(1 << 20)
    before = front.cpu()
    started = time.perf_counter()
    with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
        sock.sendall(hello + size.to_bytes(8, "big") + direction)
        left = size if direction == b"u" else 0
        while left > 0:
            sock.sendall(block[:min(left, len(block))])
            left -= min(left, len(block))
        buffer, left, answer = bytearray(1 << 20), 4 + (size if direction == b"d" else 0), b""
        while left > 0:
            got = sock.recv_into(buffer)
            assert got, f"{left} bytes missing"
            left -= got
            answer = (answer + bytes(buffer[max(0, got - 4):got]))[-4:]
    elapsed = time.perf_counter() - started
    used = front.cpu() - before
    assert answer == b"done", answer
    return used, elapsed


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--samples", type=int, default=400, help="greetings per route")
    parser.add_argument("--megabytes", type=int, default=512, help="bulk per run")
    parser.add_argument("--rounds", type=int, default=3, help="bulk runs per front and direction")
    args = parser.parse_args()
    if not shutil.which("nginx") or not Path(NGINX_STREAM_MODULE).exists():
        sys.exit("front bench: needs Debian's nginx and libnginx-mod-stream (make bench installs them)")
    started_load = os.getloadavg()
    with tempfile.TemporaryDirectory() as directory:
        tmp = Path(directory)
        os.chmod(tmp, 0o755)
        imap = Imap(tmp / "imap")
        sink = subprocess.Popen([sys.executable, "-c", SINK], stdout=subprocess.PIPE, text=True)
        sink_port = int(sink.stdout.readline())
        fronts = {}
        try:
            fronts["front"] = OurFront(tmp / "front", imap.proxy_port)
            fronts["front-plain"] = OurFront(tmp / "front-plain", imap.tls_port, proxy_protocol=False)
            fronts["nginx"] = Nginx(tmp / "nginx", imap.tls_port, proxy_protocol=False)
            fronts["nginx-proxy"] = Nginx(tmp / "nginx-proxy", imap.proxy_port, proxy_protocol=True)
            fronts["front-sink"] = OurFront(tmp / "front-sink", sink_port)
            fronts["nginx-sink"] = Nginx(tmp / "nginx-sink", sink_port, proxy_protocol=True)
            threads = fronts["front-sink"].threads()
            workers = len(fronts["nginx-sink"].workers())

            routes = {"direct": imap.tls_port, "front": fronts["front"].port,
                      "front-plain": fronts["front-plain"].port, "nginx": fronts["nginx"].port,
                      "nginx-proxy": fronts["nginx-proxy"].port}
            cpu_before = {name: fronts[name].cpu() for name in routes if name != "direct"}
            times = latency(routes, args.samples)
            per_connection = {name: (fronts[name].cpu() - cpu) / (args.samples + WARM_UP) * 1e6
                              for name, cpu in cpu_before.items()}
            p = {name: (percentile(v, 0.5) * 1e6, percentile(v, 0.99) * 1e6) for name, v in times.items()}
            print(f"front bench: chatmail-iroh's front ({threads} threads, its listener on one event loop) beside "
                  f"nginx {nginx_version()} stream + ssl_preread ({workers} worker process), loopback, 2 cores shared")
            print(f"  connect + TLS handshake (ALPN imap) + IMAP greeting, {args.samples} samples per route, "
                  "interleaved:")
            labels = {"direct": "IMAP TLS port directly", "front": "our front, PROXY v2 -> proxy_tls_listen",
                      "front-plain": "our front, no header -> TLS port", "nginx": "nginx, no header -> TLS port",
                      "nginx-proxy": "nginx, PROXY v1 -> proxy_tls_listen"}
            for name, (p50, p99) in p.items():
                added = "" if name == "direct" else (
                    f"  added p50 {p50 - p['direct'][0]:6.0f} us  p99 {p99 - p['direct'][1]:6.0f} us"
                    f"  ({p50 / p['direct'][0]:4.2f}x direct at p50)")
                print(f"    {labels[name]:42}: p50 {p50:7.0f} us  p99 {p99:7.0f} us{added}")
            ours_added = p["front-plain"][0] - p["direct"][0]
            nginx_added = p["nginx"][0] - p["direct"][0]
            if nginx_added > 0:
                print(f"    added p50, our front (no header) / nginx: {ours_added / nginx_added:5.2f}x")
            nginx_proxy_added = p["nginx-proxy"][0] - p["direct"][0]
            if nginx_proxy_added > 0:
                print(f"    added p50, our front (PROXY v2) / nginx (PROXY v1): "
                      f"{(p['front'][0] - p['direct'][0]) / nginx_proxy_added:5.2f}x")
            print(f"    front CPU per routed greeting: ours {per_connection['front']:4.0f} us (PROXY v2),"
                  f" {per_connection['front-plain']:4.0f} us (no header); nginx {per_connection['nginx']:4.0f} us;"
                  f" ours (no header) / nginx {per_connection['front-plain'] / per_connection['nginx']:5.2f}x;"
                  f" nginx {per_connection['nginx-proxy']:4.0f} us (PROXY v1),"
                  f" ours / nginx {per_connection['front'] / per_connection['nginx-proxy']:5.2f}x")

            hello = client_hello()
            size = args.megabytes << 20
            print(f"  bulk through the route, {args.rounds} x {args.megabytes} MiB per front and direction, raw bytes after a ClientHello "
                  "(ALPN imap), to an upstream reading the PROXY header (v2 ours, v1 nginx's):")
            megabytes = args.rounds * size / 1e6
            for direction, name in ((b"u", "upload   (client -> upstream)"), (b"d", "download (upstream -> client)")):
                used = {"front-sink": [0.0, 0.0], "nginx-sink": [0.0, 0.0]}
                for _ in range(args.rounds):  # alternating, so that load changes hit both alike
                    for key in used:
                        cpu, wall = bulk(fronts[key].port, fronts[key], size, direction, hello)
                        used[key][0] += cpu
                        used[key][1] += wall
                (ours, ours_wall), (theirs, theirs_wall) = used["front-sink"], used["nginx-sink"]
                print(f"    {name}: our front {megabytes / ours:6.0f} MB/CPU-s ({megabytes / ours_wall:5.0f} MB/s"
                      f" wall); nginx {megabytes / theirs:6.0f} MB/CPU-s ({megabytes / theirs_wall:5.0f} MB/s wall);"
                      f" ours / nginx {theirs / ours:5.2f}x")
        finally:
            for front in fronts.values():
                front.stop()
            sink.kill()
            sink.wait()
            imap.stop()
    ended_load = os.getloadavg()
    print(f"  load average at start {started_load[0]:.2f}, at the end {ended_load[0]:.2f}")


def nginx_version():
    out = subprocess.run(["nginx", "-v"], capture_output=True, text=True).stderr
    return out.strip().split("/")[-1]


if __name__ == "__main__":
    main()
