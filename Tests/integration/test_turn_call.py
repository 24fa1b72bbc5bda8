"""A real call through chatmail-turn: two aiortc peers (relay-only ICE) take their ICE server from
IMAP METADATA, as Delta Chat does, under the real supervisor with the real TURN and IMAP children,
and exchange data channel messages and an audio track. The pair they use is relay to relay on our
server."""

import asyncio
import re

import pytest

from conftest import bin_dir
from test_imap import free_port
from turn_stun import turn_from_imap

aiortc = pytest.importorskip("aiortc")
from aiortc import RTCConfiguration, RTCIceServer, RTCPeerConnection  # noqa: E402
from aiortc.mediastreams import AudioStreamTrack  # noqa: E402
from aiortc.rtcconfiguration import RTCIceTransportPolicy  # noqa: E402

DOMAIN = "example.org"


@pytest.fixture
def bundle(supervisor_factory, tmp_path):
    sup = supervisor_factory(
        modes={"turn": str(bin_dir() / "chatmail-turn"), "imap": str(bin_dir() / "chatmail-imap"), "iroh": None,
               "shadowsocks": None},
        extra={"turn": [f'tls_listen = "127.0.0.1:{free_port()}"'],
               "imap": [f'tls_listen = "127.0.0.1:{free_port()}"', f'lmtp_socket = "{tmp_path}/run/lmtp.sock"',
                        f'mail_domain = "{DOMAIN}"', "plaintext_login = true", "password_iterations = 1000"]})
    text = sup.config.read_text().replace('host = "turn.example.org"', 'host = "127.0.0.1"')
    sup.config.write_text(text + '\n[tls]\nself_signed = true\nnames = ["localhost"]\n')
    sup.start()
    sup.wait_state("turn", "ready", timeout=30)
    sup.wait_state("imap", "ready", timeout=30)
    return sup


def nominated_pair(pc):
    """The candidate pair ICE chose for the peer connection's (bundled) transport."""
    connection = pc.sctp.transport.transport._connection
    return connection._nominated[1]


async def call(host, port, username, password):
    configuration = RTCConfiguration(
        iceServers=[RTCIceServer(urls=f"turn:{host}:{port}", username=username, credential=password)],
        iceTransportPolicy=RTCIceTransportPolicy.RELAY)
    caller, callee = RTCPeerConnection(configuration), RTCPeerConnection(configuration)
    received_audio, messages, answered = asyncio.Queue(), asyncio.Queue(), asyncio.Queue()
    try:
        channel = caller.createDataChannel("chat")
        channel.on("message", lambda message: answered.put_nowait(message))
        caller.addTrack(AudioStreamTrack())

        @callee.on("datachannel")
        def on_datachannel(incoming):
            @incoming.on("message")
            def on_message(message):
                messages.put_nowait(message)
                incoming.send("pong: " + message)

        @callee.on("track")
        def on_track(track):
            async def pull():
                for _ in range(25):
                    frame = await track.recv()
                    received_audio.put_nowait(frame)
            asyncio.ensure_future(pull())

        await caller.setLocalDescription(await caller.createOffer())
        offer = caller.localDescription
        await callee.setRemoteDescription(offer)
        await callee.setLocalDescription(await callee.createAnswer())
        answer = callee.localDescription
        await caller.setRemoteDescription(answer)

        for sdp in (offer.sdp, answer.sdp):
            candidates = re.findall(r"a=candidate:.*", sdp)
            assert candidates and all(" typ relay" in c for c in candidates), sdp

        opened = asyncio.Event()
        channel.on("open", opened.set)
        if channel.readyState != "open":
            await asyncio.wait_for(opened.wait(), 20)
        channel.send("ping")
        assert await asyncio.wait_for(messages.get(), 10) == "ping"
        assert await asyncio.wait_for(answered.get(), 10) == "pong: ping"
        for _ in range(25):
            await asyncio.wait_for(received_audio.get(), 10)

        relayed = []
        for pc in (caller, callee):
            pair = nominated_pair(pc)
            assert pair.local_candidate.type == "relay" and pair.remote_candidate.type == "relay", pair
            relayed.append((pair.local_candidate.host, pair.local_candidate.port))
        return relayed
    finally:
        await caller.close()
        await callee.close()


def test_a_call_through_our_relay_with_ice_servers_from_imap(bundle):
    host, port, username, password = turn_from_imap(21143, "caller123@" + DOMAIN, "password123")
    assert (host, port) == ("127.0.0.1", 23478)
    relayed = asyncio.run(asyncio.wait_for(call(host, port, username, password), 90))
    # Both ends used relayed addresses of our server, from its relay port range.
    assert all(address == "127.0.0.1" and 49152 <= relay_port <= 65535 for address, relay_port in relayed), relayed
