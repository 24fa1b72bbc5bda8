"""Two iroh 1.x endpoints (PyPI `iroh`) exchange data through the relay at RELAY_URL.

Usage: iroh1_echo.py RELAY_URL SIZE [IDLE]. The server endpoint echoes one bidirectional stream; the client sends
SIZE random bytes and checks the echo, after both endpoints sat connected to the relay for IDLE seconds (so that
the relay's and the clients' pings have run). Prints one JSON line: {"ok": bool, "relay_selected": bool, ...}.
"""

import asyncio
import json
import os
import sys
import time

import iroh

ALPN = b"chatmail/iroh-relay-test/0"


def options(relay_url, alpns=None):
    relay_map = iroh.RelayMap.empty()
    relay_map.insert(iroh.RelayConfig(url=relay_url))
    kwargs = dict(preset=iroh.preset_minimal(), relay_mode=iroh.RelayMode.custom(relay_map))
    if alpns:
        kwargs["alpns"] = alpns
    return iroh.EndpointOptions(**kwargs)


async def main(relay_url, size, idle):
    started = time.monotonic()
    server = await iroh.Endpoint.bind(options(relay_url, [ALPN]))
    client = await iroh.Endpoint.bind(options(relay_url))
    await asyncio.wait_for(server.online(), 20)
    await asyncio.wait_for(client.online(), 20)

    async def serve():
        incoming = await server.accept_next()
        accepting = await incoming.accept()
        conn = await accepting.connect()
        bi = await conn.accept_bi()
        data = await bi.recv().read_to_end(size + 1)
        await bi.send().write_all(data)
        await bi.send().finish()
        await asyncio.sleep(1)

    await asyncio.sleep(idle)
    serving = asyncio.ensure_future(serve())
    conn = await asyncio.wait_for(client.connect(iroh.EndpointAddr(server.id(), relay_url, []), ALPN), 20)
    payload = os.urandom(size)
    bi = await conn.open_bi()
    await bi.send().write_all(payload)
    await bi.send().finish()
    echoed = await asyncio.wait_for(bi.recv().read_to_end(size + 1), 30)
    paths = conn.paths()
    selected = [p for p in paths if p.is_selected]
    result = {
        "ok": echoed == payload,
        "relay_selected": any(p.is_relay for p in selected),
        "paths": [str(p.remote_addr) for p in selected],
        "seconds": round(time.monotonic() - started, 3),
    }
    await asyncio.wait_for(serving, 10)
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2]), float(sys.argv[3]) if len(sys.argv) > 3 else 0))
    os._exit(0)
