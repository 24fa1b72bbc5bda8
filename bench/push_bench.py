"""What push notifications cost delivery: LMTP deliveries per second to accounts with two device
tokens each, chatmail-imap with push on (posting to a local HTTPS proxy that answers 200) beside
push off, in one run, alternating rounds. Push may cost at most 10% of the rate (issue 15).

    CHATMAIL_BIN_DIR=.build/release python3 bench/push_bench.py [--seconds 5] [--rounds 2]
"""

import argparse
import asyncio
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from imap_bench import USERS, PASSWORD, Ours, lmtp_per_second, read_until  # noqa: E402


PROXY = r"""
import asyncio, ssl, sys
context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
context.load_cert_chain(sys.argv[1], sys.argv[2])
posts = 0

async def serve(reader, writer):
    global posts
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            await reader.readexactly(length)
            posts += 1
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError):
        writer.close()

async def main():
    server = await asyncio.start_server(serve, "127.0.0.1", 0, ssl=context)
    print(server.sockets[0].getsockname()[1], flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    print(posts, flush=True)

asyncio.run(main())
"""


class Proxy:
    """A minimal HTTPS notification proxy in a process of its own (as it would be on another
    machine; here it must not take the bench client's interpreter lock): asyncio, keep-alive, 200
    to every POST, counting them."""

    def __init__(self, work: Path):
        cert, key = work / "proxy.pem", work / "proxy.key"
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                        "-keyout", key, "-out", cert, "-days", "2", "-subj", "/CN=localhost", "-addext",
                        "subjectAltName=DNS:localhost"], check=True, capture_output=True)
        self.ca = cert
        self.process = subprocess.Popen([sys.executable, "-c", PROXY, str(cert), str(key)], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, text=True)
        self.port = int(self.process.stdout.readline())
        self.url = f"https://localhost:{self.port}/notify"

    def stop(self):
        """Stops the proxy; returns how many posts it answered."""
        self.process.stdin.write("\n")
        self.process.stdin.flush()
        posts = int(self.process.stdout.readline())
        self.process.wait(10)
        return posts


async def add_tokens(port):
    """Two device tokens per account, as Delta Chat sends them (same length as core's)."""
    for index, user in enumerate(USERS):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        await read_until(reader, b"* OK")
        writer.write(b"A1 LOGIN " + user.encode() + b" " + PASSWORD.encode() + b"\r\n")
        await read_until(reader, b"A1 ")
        for device in (b"phone", b"tablet"):
            token = b"openpgp:" + (b"%s-%d-" % (device, index)).ljust(880, b"x")
            writer.write(b'A2 SETMETADATA "INBOX" (/private/devicetoken "' + token + b'")\r\n')
            assert b"A2 OK" in await read_until(reader, b"A2 ")
        writer.close()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="push-bench-", dir="/var/tmp"))
    proxy = Proxy(work)
    servers = {}
    try:
        for name, extra in [("push off", "push = false"),
                            ("push on", f'push_url = "{proxy.url}"\npush_ca_file = "{proxy.ca}"')]:
            directory = work / name.replace(" ", "-")
            directory.mkdir()
            servers[name] = Ours(directory, extra)
            asyncio.run(add_tokens(servers[name].port))
        rates = {name: [] for name in servers}
        for _ in range(args.rounds):
            for name, server in servers.items():
                print(f"{name}: running", file=sys.stderr, flush=True)
                rates[name].append(asyncio.run(lmtp_per_second(server.lmtp_port, args.seconds)))
    finally:
        for server in servers.values():
            server.stop()
        posts = proxy.stop()
        shutil.rmtree(work, ignore_errors=True)
    off = sum(rates["push off"]) / len(rates["push off"])
    on = sum(rates["push on"]) / len(rates["push on"])
    print(f"{'LMTP deliveries/s, 2 tokens per account':42}{'push off':>10}{'push on':>10}{'ratio':>8}")
    print(f"{'mean of ' + str(args.rounds) + ' rounds of ' + str(args.seconds) + ' s':42}{off:10.1f}{on:10.1f}"
          f"{on / off:7.2f}x")
    print(f"rounds: off {', '.join(f'{r:.1f}' for r in rates['push off'])}; "
          f"on {', '.join(f'{r:.1f}' for r in rates['push on'])}; posts the proxy received: {posts}")
    print("push costs at most 10% of the rate:", "yes" if on >= 0.9 * off else "NO")


if __name__ == "__main__":
    main()
