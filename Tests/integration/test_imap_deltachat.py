"""The real Delta Chat core (deltachat-rpc-server) against chatmail-imap, with Debian's Postfix
as the MTA delivering to us over LMTP: two accounts configure, join securely, exchange messages;
and one account doing all of that through chatmail-shadowsocks with the link `chatmailctl` prints."""

import base64
import hashlib
import hmac
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from postfix_instance import available as postfix_available, running_mail_system
from conftest import ROOT, time_limit as limited_to, wait_until
from test_imap import free_port
from test_tls import make_certificate

rpc_client = pytest.importorskip("deltachat_rpc_client")
from deltachat_rpc_client.rpc import JsonRpcError  # noqa: E402 (the 2.0 client does not export it)

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
    with limited_to(120, "the Delta Chat test"):
        yield


@pytest.fixture(params=["unix", "inet"])
def mail_system(request, supervisor_factory, tmp_path):
    with running_mail_system(supervisor_factory, tmp_path, request.param) as (server, postfix):
        yield server, postfix, request.param


def configure(account, address, server, postfix, security):
    """IMAP and SMTP both over TLS ("ssl": 993-style and 465-style ports) or both with STARTTLS."""
    configure_transport(account, address, "127.0.0.1", server.tls_port if security == "ssl" else server.port,
                        security, postfix.smtps_port if security == "ssl" else postfix.submission_port, security)


def configure_transport(account, address, host, imap_port, imap_security, smtp_port, smtp_security):
    account.add_or_update_transport({
        "addr": address,
        "password": "password123",
        "imapServer": host,
        "imapPort": imap_port,
        "imapSecurity": imap_security,
        "smtpServer": host,
        "smtpPort": smtp_port,
        "smtpSecurity": smtp_security,
        "certificateChecks": "acceptInvalidCertificates",
    })
    account.start_io()
    # The core skips mail that is in INBOX when it first selects it (it starts at that UIDNEXT):
    # a securejoin answer delivered before then would never be fetched. The first inbox IDLE
    # comes after that SELECT.
    account.wait_for_event("ImapInboxIdle")


def exchange_messages(alice, bob):
    """Bob joins Alice's verified contact, and a message goes each way; Alice's copy is returned."""
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
    return message


@pytest.mark.parametrize("security", ["ssl", "starttls"])
def test_two_delta_chat_accounts_exchange_messages(mail_system, tmp_path, security):
    server, postfix, transport = mail_system
    with rpc_client.Rpc(accounts_dir=str(tmp_path / "accounts")) as rpc:
        dc = rpc_client.DeltaChat(rpc)
        alice, bob = dc.add_account(), dc.add_account()
        configure(alice, "alice0001@" + DOMAIN, server, postfix, security)
        configure(bob, "bobby0001@" + DOMAIN, server, postfix, security)
        exchange_messages(alice, bob)

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
    # Both accounts sent through the submission port of `security`, logged in through chatmail-imap.
    port_name = "submissions" if security == "ssl" else "submission"
    assert f"postfix/{port_name}/smtpd" in log and "sasl_username=alice0001@example.org" in log, log
    hop = "[chatmail/lmtp.sock]" if transport == "unix" else f"relay=127.0.0.1[127.0.0.1]:{server.lmtp_port}"
    assert hop in log and "status=sent (250 2.0.0" in log, log


@pytest.mark.parametrize("no_log", [False, True], ids=["logging", "no_log"])
def test_no_log_keeps_delta_chat_accounts_out_of_the_logs(supervisor_factory, tmp_path, no_log):
    """Two Delta Chat accounts join and write each way (log level debug): with `[supervisor] no_log` the output
    of the supervisor and its children names neither account, no client address (the core connects from
    127.0.0.1, which the servers also listen on, so the check looks for it where a client's address is logged:
    "from 127.0.0.1", "client 127.0.0.1") and not the TURN username; with logging on the accounts and the
    address are there, so the check can fail. Postfix's own log is the MTA's affair and not checked."""
    accounts = ["alice0003@" + DOMAIN, "bobby0003@" + DOMAIN]
    extra = f"no_log = {'true' if no_log else 'false'}"
    with running_mail_system(supervisor_factory, tmp_path, "unix", supervisor_extra=extra) as (server, postfix):
        with rpc_client.Rpc(accounts_dir=str(tmp_path / "accounts")) as rpc:
            dc = rpc_client.DeltaChat(rpc)
            alice, bob = dc.add_account(), dc.add_account()
            configure(alice, accounts[0], server, postfix, "ssl")
            configure(bob, accounts[1], server, postfix, "ssl")
            exchange_messages(alice, bob)
            username = alice.ice_servers()[0]["username"] if RUNNING_CORE != OLD_CORE else None
        log = server.sup.log.read_text()
    client_address = re.findall(r"(?:from|client) 127\.0\.0\.1\b", log)
    logged = [account for account in accounts if account in log]
    if no_log:
        assert not logged and not client_address, (logged, client_address)
        assert username is None or username not in log
        assert "IMAP login [hidden] from [hidden]" in log
    else:
        assert logged == accounts and client_address, log


# The mail server's name as the proxied account knows it: only `[shadowsocks] names` has it (no DNS entry, no
# /etc/hosts line; without the proxy the core fails with "Could not find DNS resolutions for chat.example.org"),
# and the test's services listen on free high ports only, so the account works only through the proxy, which
# maps 993 and 465 to chatmail-imap's TLS port and Postfix's SMTPS port.
PROXIED_NAME = "chat.example.org"


def shadowsocks_counters(sup):
    """The counters chatmail-shadowsocks logs (into the supervisor's output) when the supervisor is reloaded."""
    pattern = re.compile(r"counters: (accepted=\d+.*)")
    logged = len(pattern.findall(sup.log.read_text()))
    sup.ctl("reload")
    found = wait_until(lambda: pattern.findall(sup.log.read_text())[logged:], timeout=15,
                       what="chatmail-shadowsocks to log its counters")
    return {key: int(value) for key, value in (item.split("=") for item in found[0].split())}


@pytest.mark.parametrize("method", ["2022-blake3-aes-256-gcm", "chacha20-ietf-poly1305"])
def test_delta_chat_reaches_the_server_through_the_shadowsocks_link(supervisor_factory, tmp_path, method):
    """Alice's account uses only the link from `chatmailctl shadowsocks url` as its proxy (Delta Chat's own
    Shadowsocks client, SIP022 or SIP004) for IMAP and SMTPS; Bob's connects directly; they join securely and
    write each way. chatmail-shadowsocks's counters show the connections it carried. Carol's account, proxied
    to a host that is not this server, fails at once."""
    tls_port, smtps_port = free_port(), free_port()
    certificate = make_certificate(tmp_path, PROXIED_NAME)
    shadowsocks = [f'method = "{method}"', f'names = ["{PROXIED_NAME}"]', 'addresses = ["192.0.2.1"]',
                   'public_host = "127.0.0.1"', "allowed_ports = [993, 465]",
                   f'upstreams = ["993=127.0.0.1:{tls_port}", "465=127.0.0.1:{smtps_port}"]']
    with running_mail_system(supervisor_factory, tmp_path, "unix", shadowsocks=shadowsocks, smtps_port=smtps_port,
                             certificate=certificate, tls_port=tls_port) as (server, postfix):
        sup = server.sup
        link = sup.ctl("shadowsocks", "url").stdout.strip()
        assert link.startswith("ss://") and link.endswith(f"@127.0.0.1:{server.shadowsocks_port}#127.0.0.1"), link
        with rpc_client.Rpc(accounts_dir=str(tmp_path / "accounts")) as rpc:
            dc = rpc_client.DeltaChat(rpc)
            alice, bob = dc.add_account(), dc.add_account()
            alice.set_config("proxy_url", link)
            alice.set_config("proxy_enabled", "1")
            configure_transport(alice, "alice0002@" + DOMAIN, PROXIED_NAME, 993, "ssl", 465, "ssl")
            configure(bob, "bobby0002@" + DOMAIN, server, postfix, "ssl")
            exchange_messages(alice, bob)
            assert alice.get_config("proxy_enabled") == "1"
            assert bob.get_config("proxy_enabled") != "1"
            # A host the proxy may not reach: the core is told at once (the connection closes without a byte)
            # instead of waiting out the proxy's 60 s handshake deadline.
            carol = dc.add_account()
            carol.set_config("proxy_url", link)
            carol.set_config("proxy_enabled", "1")
            started = time.monotonic()
            with pytest.raises(JsonRpcError, match="IMAP failed to connect"):
                configure_transport(carol, "carol0002@" + DOMAIN, "mail.example.net", 993, "ssl", 465, "ssl")
            assert time.monotonic() - started < 15
        counters = shadowsocks_counters(sup)
        # At least one IMAP and one SMTP connection, each with a TLS session and mail in both directions.
        assert counters["accepted"] >= 2, counters
        assert counters["bytes_from_clients"] > 5_000 and counters["bytes_to_clients"] > 5_000, counters
        assert counters["failed_handshakes"] == 0 and counters["replays"] == 0, counters
        assert counters["upstream_failures"] == 0 and counters["refused_port"] == 0, counters
        assert counters["refused_host"] >= 1, counters  # Carol's
        assert 'refused target "mail.example.net":993 (not this server)' in sup.log.read_text()
        # Alice's mail went in over SMTPS, which only the proxy reaches as chat.example.org:465.
        log = postfix.log()
        assert "postfix/submissions/smtpd" in log and "from=<alice0002@example.org>" in log, log


def test_delta_chat_2_0_core_exchanges_messages_too():
    """Old cores: the tests above again (directly and through the Shadowsocks link) with deltachat-rpc-server
    and -client 2.0.0 (the oldest the issue names), in their own venv because the current client cannot drive
    an old server."""
    if RUNNING_CORE:
        pytest.skip("this is the run inside the old core's venv")
    python = OLD_CORE_VENV / "bin" / "python"
    assert python.exists(), f"{OLD_CORE_VENV} is missing: `make test-deps` makes it"
    env = dict(os.environ, CHATMAIL_DELTACHAT_CORE=OLD_CORE, PATH=f"{OLD_CORE_VENV / 'bin'}:{os.environ['PATH']}")
    run = subprocess.run([str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider", __file__, "-k",
                          "two_delta_chat_accounts or shadowsocks_link"], cwd=Path(__file__).parent, env=env,
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0 and " passed" in run.stdout and "skipped" not in run.stdout, run.stdout + run.stderr
