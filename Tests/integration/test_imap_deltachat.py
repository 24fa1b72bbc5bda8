"""The real Delta Chat core (deltachat-rpc-server) against chatmail-imap, with Debian's Postfix
as the MTA delivering to us over LMTP: two accounts configure, join securely, exchange messages."""

import base64
import hashlib
import hmac
import os
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

import pytest

from postfix_instance import Postfix, available as postfix_available
from conftest import ROOT
from test_imap import SupervisedIMAP, free_port

rpc_client = pytest.importorskip("deltachat_rpc_client")

pytestmark = pytest.mark.skipif(
    not postfix_available() or shutil.which("deltachat-rpc-server") is None,
    reason="needs root, Debian's postfix and deltachat-rpc-server (make test-deps)")

DOMAIN = "example.org"
# The oldest core the issue names; `make test-deps` installs it with its own client in this venv.
OLD_CORE = "2.0.0"
OLD_CORE_VENV = ROOT / ".build" / f"deltachat-{OLD_CORE}"
# Set when this file runs again inside that venv, under the old core.
RUNNING_CORE = os.environ.get("CHATMAIL_DELTACHAT_CORE")


@pytest.fixture(autouse=True)
def time_limit(request):
    """The client's waits have no timeout of their own: bound the whole test (teardown still runs).
    The old-core run is bounded per test inside its own pytest, and as a whole by its timeout."""
    if request.node.name.startswith("test_delta_chat_2_0_core"):
        yield
        return

    def expire(signum, frame):
        raise TimeoutError("the Delta Chat test took longer than 120 s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(120)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


@pytest.fixture(params=["unix", "inet"])
def mail_system(request, supervisor_factory, tmp_path):
    """chatmail-imap under the real supervisor (fake TURN child on 127.0.0.1:23478), Postfix in front
    delivering over LMTP on the Unix socket or on loopback TCP."""
    # Postfix's LMTP client runs as the postfix user: the socket lives where it can reach it.
    socket_dir = Path(tempfile.mkdtemp(prefix="chatmail-lmtp-", dir="/var/tmp"))
    os.chmod(socket_dir, 0o755)
    postfix = None
    try:
        server = SupervisedIMAP(supervisor_factory, tmp_path, turn_host="127.0.0.1", plaintext_login=False,
                                lmtp_socket=str(socket_dir / "lmtp.sock"))
        next_hop = f"unix:{server.lmtp_socket}" if request.param == "unix" else f"inet:127.0.0.1:{server.lmtp_port}"
        postfix = Postfix(DOMAIN, free_port(), next_hop)
        yield server, postfix, request.param
    finally:
        if postfix:
            postfix.stop()
        shutil.rmtree(socket_dir, ignore_errors=True)


def configure(account, address, server, postfix, security):
    account.add_or_update_transport({
        "addr": address,
        "password": "password123",
        "imapServer": "127.0.0.1",
        "imapPort": server.tls_port if security == "ssl" else server.port,
        "imapSecurity": security,
        "smtpServer": "127.0.0.1",
        "smtpPort": postfix.port,
        "smtpSecurity": "plain",
        "certificateChecks": "acceptInvalidCertificates",
    })
    account.start_io()


@pytest.mark.parametrize("security", ["ssl", "starttls"])
def test_two_delta_chat_accounts_exchange_messages(mail_system, tmp_path, security):
    server, postfix, transport = mail_system
    with rpc_client.Rpc(accounts_dir=str(tmp_path / "accounts")) as rpc:
        dc = rpc_client.DeltaChat(rpc)
        alice, bob = dc.add_account(), dc.add_account()
        configure(alice, "alice0001@" + DOMAIN, server, postfix, security)
        configure(bob, "bobby0001@" + DOMAIN, server, postfix, security)

        bob.secure_join(alice.get_qr_code())
        alice.wait_for_securejoin_inviter_success()
        bob.wait_for_securejoin_joiner_success()

        chat = bob.create_chat(alice)
        chat.send_text("hello from bob")
        message = alice.wait_for_incoming_msg().get_snapshot()
        assert message.text == "hello from bob"
        assert message.show_padlock

        message.chat.send_text("hello back")
        assert bob.wait_for_incoming_msg().get_snapshot().text == "hello back"

        info = alice.get_info()
        # The core shows them Rust-debug-quoted: the comment arrived as a literal, unescaped.
        assert info.get("imap_server_comment") == '"Chatmail \\"test\\" server"', info
        assert info.get("imap_server_admin") == '"mailto:root@example.org"', info
        assert info.get("imap_server_id") == '{"name": "chatmail-swift"}', info
        if RUNNING_CORE == OLD_CORE:
            return  # ice_servers() (calls) came after 2.0
        # Our TURN server from METADATA, with a credential minted from the supervisor's secret.
        ice = alice.ice_servers()
        assert [entry["urls"] for entry in ice] == [["turn:127.0.0.1:23478"]], ice
        secret = server.turn_secret().encode()
        expected = base64.b64encode(hmac.new(secret, ice[0]["username"].encode(), hashlib.sha1).digest()).decode()
        assert ice[0]["credential"] == expected
    log = postfix.log()
    hop = f"[{server.lmtp_socket}]" if transport == "unix" else f"relay=127.0.0.1[127.0.0.1]:{server.lmtp_port}"
    assert hop in log and "status=sent (250 2.0.0" in log, log


def test_delta_chat_2_0_core_exchanges_messages_too():
    """Old cores: the test above again with deltachat-rpc-server and -client 2.0.0 (the oldest the issue
    names), in their own venv because the current client cannot drive an old server."""
    if RUNNING_CORE:
        pytest.skip("this is the run inside the old core's venv")
    python = OLD_CORE_VENV / "bin" / "python"
    assert python.exists(), f"{OLD_CORE_VENV} is missing: `make test-deps` makes it"
    env = dict(os.environ, CHATMAIL_DELTACHAT_CORE=OLD_CORE, PATH=f"{OLD_CORE_VENV / 'bin'}:{os.environ['PATH']}")
    run = subprocess.run([str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider", __file__, "-k",
                          "two_delta_chat_accounts"], cwd=Path(__file__).parent, env=env, capture_output=True,
                         text=True, timeout=600)
    assert run.returncode == 0 and " passed" in run.stdout and "skipped" not in run.stdout, run.stdout + run.stderr
