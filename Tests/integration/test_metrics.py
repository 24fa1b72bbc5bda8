"""The supervisor's Prometheus /metrics with the whole development bundle (all four real children): the text
passes Prometheus' own checker (`promtool check metrics`) and the Python client's parser; values move as
traffic flows (a TURN allocation, relayed bytes, failed IMAP logins, SASL logins); a hung child (SIGSTOP) is reported as
not answering within the bound while the scrape still answers. Uses the development ports: run it under the
integration-test lock."""

import imaplib
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request

import pytest

from conftest import wait_until
from test_bundle import CHILDREN, start_bundle, stop_bundle
from test_sasl import AuthClient
from turn_stun import attr, msg, parse, turn_from_imap, xaddr, xpeer

parser = pytest.importorskip("prometheus_client.parser")
METRICS = "http://127.0.0.1:19465/metrics"


def scrape():
    """(text, seconds taken); the text checked by promtool (when installed)."""
    started = time.monotonic()
    with urllib.request.urlopen(METRICS, timeout=10) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        text = response.read().decode()
    taken = time.monotonic() - started
    if shutil.which("promtool"):
        check = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True)
        assert check.returncode == 0, check.stdout + check.stderr
    return text, taken


def samples(text):
    """{(name, ((label, value), ...)): value} as prometheus_client parses the text."""
    parsed = {}
    for family in parser.text_string_to_metric_families(text):
        assert family.documentation, f"{family.name} has no HELP"
        for sample in family.samples:
            parsed[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return parsed


def value(parsed, name, **labels):
    return parsed.get((name, tuple(sorted(labels.items()))))


@pytest.fixture
def bundle(tmp_path):
    proc = start_bundle(tmp_path)
    try:
        wait_until(lambda: all(s["state"] == "ready" for s in proc.states().values()), timeout=60,
                   what="all four children ready")
        yield proc
    finally:
        stop_bundle(proc)


class TURNClient:
    def __init__(self, port, user, password, realm="localhost"):
        import hashlib
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.settimeout(5)
        self.server = ("127.0.0.1", port)
        self.user, self.realm = user, realm
        self.key = hashlib.md5(f"{user}:{realm}:{password}".encode()).digest()
        self.nonce = b""

    def transact(self, method, attrs, auth=True):
        tid = os.urandom(12)
        if auth:
            attrs = attrs + [attr(0x0006, self.user.encode()), attr(0x0014, self.realm.encode()),
                             attr(0x0015, self.nonce)]
        self.sock.sendto(msg(method, tid, attrs, self.key if auth else None), self.server)
        mtype, attributes = parse(self.sock.recv(4000))
        return mtype, attributes, tid

    def allocate(self):
        mtype, attributes, _ = self.transact(0x0003, [attr(0x0019, b"\x11\0\0\0")], auth=False)
        assert mtype == 0x0113  # 401 with a nonce
        self.nonce = attributes[0x0015]
        mtype, attributes, tid = self.transact(0x0003, [attr(0x0019, b"\x11\0\0\0")])
        assert mtype == 0x0103, attributes
        return xaddr(attributes[0x0016], tid)


def test_metrics_parse_and_move_with_traffic(bundle):
    text, _ = scrape()
    before = samples(text)
    for child in CHILDREN:
        assert value(before, "chatmail_child_up", child=child) == 1, text
        assert value(before, "chatmail_child_state", child=child, state="ready") == 1
        assert value(before, "chatmail_child_scrape_error", child=child) == 0
        assert value(before, "chatmail_child_uptime_seconds", child=child) > 0
        assert any(name.startswith(f"chatmail_{child}_") for name, _ in before), f"no counters from {child}"
    assert value(before, "chatmail_turn_total_allocations") == 0

    # A failed IMAP login raises the failed-login counter.
    failed = value(before, "chatmail_imap_logins_total", result="failed")
    sasl_ok = value(before, "chatmail_imap_sasl_logins_total", result="ok")
    sasl_failed = value(before, "chatmail_imap_sasl_logins_total", result="failed")
    with pytest.raises(imaplib.IMAP4.error):
        imaplib.IMAP4("127.0.0.1", 1143).login("nosuchuser@localhost", "wrong-password-123")
    # So does each of three on one connection, the last of which closes it.
    imap = imaplib.IMAP4("127.0.0.1", 1143)
    for attempt in range(3):
        with pytest.raises(imaplib.IMAP4.error):
            imap.login("nosuchuser@localhost", f"wrong-password-{attempt}")
    with pytest.raises((imaplib.IMAP4.abort, OSError)):
        imap.noop()

    # An allocation raises the gauge; a relayed transfer both ways raises the byte counters.
    _, port, user, password = turn_from_imap(1143, "metrics12@localhost", "a-long-enough-password-1")

    # SMTP logins on the SASL auth socket, as Postfix checks them: one accepted, one wrong
    # password, one malformed.
    sasl = AuthClient(str(bundle.tmp / "auth.sock"))
    sasl.handshake()
    assert sasl.plain(1, "metrics12@localhost", "a-long-enough-password-1").startswith("OK\t1")
    assert sasl.plain(2, "metrics12@localhost", "wrong-password-123").startswith("FAIL\t2")
    assert sasl.request("AUTH\t3\tPLAIN\tservice=smtp\tsecured\tresp=!!!").startswith("FAIL\t3")
    sasl.close()
    client = TURNClient(port, user, password)
    relayed = client.allocate()
    peer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    peer.settimeout(5)
    peer.bind(("127.0.0.1", 0))
    peer_address = peer.getsockname()
    mtype, attributes, _ = client.transact(0x0008, [attr(0x0012, xpeer(*peer_address, os.urandom(12)))])
    assert mtype == 0x0108, attributes  # CreatePermission success
    payload = b"x" * 1000
    tid = os.urandom(12)
    client.sock.sendto(msg(0x0016, tid, [attr(0x0012, xpeer(*peer_address, tid)), attr(0x0013, payload)]),
                       client.server)
    data, source = peer.recvfrom(4000)
    assert data == payload and source == relayed
    peer.sendto(payload * 2, relayed)
    mtype, attributes = parse(client.sock.recv(4000))
    assert mtype == 0x0017 and attributes[0x0013] == payload * 2  # Data indication

    after = samples(scrape()[0])
    assert value(after, "chatmail_turn_total_allocations") == 1
    assert value(after, "chatmail_turn_allocations_created_total") >= 1
    assert value(after, "chatmail_turn_unauthorized_total") >= 1
    assert value(after, "chatmail_turn_traffic_peer_sentb_total") >= 1000
    assert value(after, "chatmail_turn_traffic_peer_sentp_total") >= 1
    assert value(after, "chatmail_turn_traffic_peer_rcvb_total") >= 2000
    assert value(after, "chatmail_imap_logins_total", result="failed") == failed + 4
    assert value(after, "chatmail_imap_sasl_logins_total", result="ok") == sasl_ok + 1
    assert value(after, "chatmail_imap_sasl_logins_total", result="failed") == sasl_failed + 2
    assert value(after, "chatmail_imap_logins_total", result="ok") >= 1
    assert value(after, "chatmail_imap_accounts_created_total") >= 1
    # The push worker's counters are there (nothing posted: no device token was set).
    for outcome in ("sent", "retried", "gone", "dropped"):
        assert value(after, "chatmail_imap_push_posts_total", outcome=outcome) == 0
    client.sock.close()
    peer.close()


def test_the_fronts_routes_and_new_accounts_are_counted(bundle):
    """The HTTPS front (127.0.0.1:3341 in the development bundle) counts each connection by route, and each
    POST /new by its answer."""
    import ssl
    from test_front import hello
    before = samples(scrape()[0])
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.set_alpn_protocols(["imap"])
    with context.wrap_socket(socket.create_connection(("127.0.0.1", 3341), timeout=10),
                             server_hostname="localhost") as imap:
        assert imap.recv(4096).startswith(b"* OK")
    with socket.create_connection(("127.0.0.1", 3341), timeout=10) as garbage:
        garbage.sendall(b"GET / HTTP/1.1\r\n\r\n")  # plain HTTP on the TLS port
        garbage.settimeout(10)
        while garbage.recv(4096):
            pass
    with socket.create_connection(("127.0.0.1", 3341), timeout=10) as smtp:
        smtp.sendall(hello(b"smtp"))  # the development bundle has no SMTP upstream
        while smtp.recv(4096):
            pass
    context.set_alpn_protocols(["http/1.1"])
    statuses = []
    for _ in range(2):
        request = urllib.request.Request("https://127.0.0.1:3341/new", method="POST", data=b"")
        try:
            with urllib.request.urlopen(request, context=context, timeout=10) as response:
                statuses.append(response.status)
        except urllib.error.HTTPError as error:
            statuses.append(error.code)
    after = samples(scrape()[0])

    def moved(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)
    assert moved("chatmail_iroh_front_connections_total", route="imap") == 1
    assert moved("chatmail_iroh_front_connections_total", route="refused") == 2
    assert moved("chatmail_iroh_front_connections_total", route="https") == 2
    assert moved("chatmail_iroh_front_connections_total", route="smtp") == 0
    for status, result in ((200, "given"), (429, "rate_limited"), (503, "creation_closed")):
        assert moved("chatmail_iroh_front_new_accounts_total", result=result) == statuses.count(status), statuses
    assert statuses.count(200) >= 1


def test_a_hung_child_is_reported_as_not_answering_and_the_scrape_still_answers(bundle):
    pid = bundle.states()["shadowsocks"]["pid"]
    os.kill(pid, signal.SIGSTOP)
    try:
        text, taken = scrape()
    finally:
        os.kill(pid, signal.SIGCONT)
    parsed = samples(text)
    assert taken < 5, f"the scrape took {taken:.1f} s with a hung child"
    assert value(parsed, "chatmail_child_up", child="shadowsocks") == 0
    assert value(parsed, "chatmail_child_scrape_error", child="shadowsocks") == 1
    assert not any(name.startswith("chatmail_shadowsocks_") for name, _ in parsed), "no zeros for a silent child"
    for child in ("turn", "iroh", "imap"):
        assert value(parsed, "chatmail_child_up", child=child) == 1
    # Answering again once it runs.
    wait_until(lambda: value(samples(scrape()[0]), "chatmail_child_up", child="shadowsocks") == 1, timeout=10,
               what="shadowsocks answering again")


def test_only_get_metrics_and_small_requests(bundle):
    request = urllib.request.Request(METRICS, method="POST", data=b"x")
    with pytest.raises(urllib.error.HTTPError) as error:
        urllib.request.urlopen(request, timeout=5)
    assert error.value.code == 405
    with pytest.raises(urllib.error.HTTPError) as error:
        urllib.request.urlopen("http://127.0.0.1:19465/other", timeout=5)
    assert error.value.code == 404
    # An oversized request is cut off, not buffered.
    with socket.create_connection(("127.0.0.1", 19465), timeout=5) as sock:
        try:
            sock.sendall(b"GET /metrics HTTP/1.1\r\nX: " + b"a" * 20000 + b"\r\n\r\n")
        except OSError:
            pass
        try:
            answer = sock.recv(100)
        except ConnectionResetError:
            answer = b""
        assert answer == b"", answer
    scrape()  # and the server still answers
