"""Two iroh 0.35 nodes (PyPI `iroh==0.35.0`, Delta Chat's generation) exchange data through the relay at RELAY_URL.

Usage: iroh035_echo.py RELAY_URL SIZE [IDLE]. The 0.35 bindings have no relay-mode option, but dialing a NodeAddr that
names RELAY_URL makes a node open a (non-home) relay connection there with the `iroh derp http` upgrade. Node 1
attaches itself with a dummy dial to node 2; node 2 dials node 1 and sends SIZE random bytes, which node 1
echoes; with IDLE, node 2 first sits connected to the relay for IDLE seconds (its dial waits there). Prints one JSON line: {"ok": bool, "conn_type": "RELAY" | ..., ...}. Exits with os._exit, because the
wheel aborts at interpreter exit.
"""

import asyncio
import json
import os
import sys
import time

import iroh

ALPN = b"chatmail/iroh-relay-test/0"


class Echo:
    def __init__(self, size):
        self.size = size

    async def accept(self, conn):
        bi = await conn.accept_bi()
        data = await bi.recv().read_to_end(self.size + 1)
        await bi.send().write_all(data)
        await bi.send().finish()
        await asyncio.sleep(1)

    async def shutdown(self):
        pass


class Creator:
    def __init__(self, size):
        self.size = size

    def create(self, endpoint):
        return Echo(self.size)


async def main(relay_url, size, idle):
    started = time.monotonic()
    # Callbacks from the node's threads (the protocol handler) run on this loop.
    iroh.iroh_ffi.uniffi_set_event_loop(asyncio.get_running_loop())
    node1 = await iroh.Iroh.memory_with_options(
        iroh.NodeOptions(protocols={ALPN: Creator(size)}, node_discovery=iroh.NodeDiscoveryConfig.NONE))
    node2 = await iroh.Iroh.memory_with_options(iroh.NodeOptions(node_discovery=iroh.NodeDiscoveryConfig.NONE))
    id1 = iroh.PublicKey.from_string(await node1.net().node_id())
    id2 = iroh.PublicKey.from_string(await node2.net().node_id())

    async def attach():
        # Makes node 1 connect to the relay; the dial itself is not expected to succeed.
        try:
            await node1.node().endpoint().connect(iroh.NodeAddr(id2, relay_url, []), b"attach")
        except Exception:
            pass

    attaching = asyncio.ensure_future(attach())
    await asyncio.sleep(0.5 + idle)
    conn = await asyncio.wait_for(node2.node().endpoint().connect(iroh.NodeAddr(id1, relay_url, []), ALPN), 30)
    payload = os.urandom(size)
    bi = await conn.open_bi()
    await bi.send().write_all(payload)
    await bi.send().finish()
    echoed = await asyncio.wait_for(bi.recv().read_to_end(size + 1), 30)
    info = await node2.net().remote_info(id1)
    result = {
        "ok": echoed == payload,
        "conn_type": info.conn_type.type().name if info else None,
        "seconds": round(time.monotonic() - started, 3),
    }
    attaching.cancel()
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    try:
        idle = float(sys.argv[3]) if len(sys.argv) > 3 else 0
        asyncio.run(asyncio.wait_for(main(sys.argv[1], int(sys.argv[2]), idle), 60 + idle))
    except BaseException as error:
        print(json.dumps({"ok": False, "error": repr(error)}), flush=True)
    os._exit(0)
