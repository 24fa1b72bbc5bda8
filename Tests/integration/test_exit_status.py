"""Exit statuses of the real children under the real supervisor: only a value in the file exits 78 (the
supervisor waits for a reload); a taken port, a runtime directory that cannot be made, any other trouble
of the system exits 1 and is retried with backoff, the same for every child and every transport."""

import socket
import time

import pytest

from conftest import bin_dir, wait_until

CHILDREN = ["imap", "turn", "iroh", "shadowsocks"]


def free_port(kind=socket.SOCK_STREAM):
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def supervised(supervisor_factory, tmp_path, child, extra=None, tls=True, lmtp_socket=None):
    """The real `child` alone under the supervisor (the others disabled), with what it needs to run."""
    lines = {
        "imap": [f'tls_listen = "127.0.0.1:{free_port()}"',
                 f'lmtp_socket = "{lmtp_socket or tmp_path / "run" / "lmtp.sock"}"',
                 'mail_domain = "example.org"', "password_iterations = 1000"],
        "turn": [f'tls_listen = "127.0.0.1:{free_port()}"'],
        "iroh": [],
        "shadowsocks": ['names = ["example.org"]', 'addresses = ["192.0.2.1"]'],
    }[child] + (extra or [])
    modes = {name: None for name in CHILDREN}
    modes[child] = str(bin_dir() / f"chatmail-{child}")
    sup = supervisor_factory(modes=modes, extra={child: lines},
                             supervisor_extra="restart_delay_min = 0.2\nrestart_delay_max = 1")
    if tls:
        sup.config.write_text(sup.config.read_text() + '\n[tls]\nself_signed = true\nnames = ["localhost"]\n')
    return sup


def retried_until_free(sup, child, blocker):
    """`child` exits 1 and is started again while `blocker` stands; once it is closed, the child gets ready."""
    status = wait_until(lambda: (s := sup.status()[child])["restarts"] >= 2 and s, timeout=30,
                        what=f"{child} to be retried twice")
    assert status["last_exit"] == "exit 1", status
    assert status["state"] != "config error", status
    blocker.close()
    sup.wait_state(child, "ready", timeout=30)


@pytest.mark.parametrize("child", CHILDREN)
def test_a_taken_tcp_port_exits_1_and_is_retried(supervisor_factory, tmp_path, child):
    sup = supervised(supervisor_factory, tmp_path, child)
    blocker = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    # Past connections of other tests may sit in TIME_WAIT on the port; a listener still blocks the child.
    blocker.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    blocker.bind(("127.0.0.1", sup.ports[child]))
    blocker.listen()
    sup.start()
    retried_until_free(sup, child, blocker)


def test_a_taken_udp_port_exits_1_and_is_retried(supervisor_factory, tmp_path):
    sup = supervised(supervisor_factory, tmp_path, "turn")
    blocker = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    blocker.bind(("127.0.0.1", sup.ports["turn"]))
    sup.start()
    retried_until_free(sup, "turn", blocker)


def test_a_runtime_directory_that_cannot_be_made_exits_1_and_is_retried(supervisor_factory, tmp_path):
    """The LMTP socket's directory is in the way of a plain file (the tests run as root, for whom no
    permission bits stop a mkdir): the bind fails, the child exits 1, and it serves once the file is gone."""
    blocker = tmp_path / "sockets"
    blocker.write_text("not a directory")
    sup = supervised(supervisor_factory, tmp_path, "imap", lmtp_socket=blocker / "lmtp.sock").start()

    class Remover:
        def close(self):
            blocker.unlink()

    retried_until_free(sup, "imap", Remover())
    assert (blocker / "lmtp.sock").is_socket()


@pytest.mark.parametrize("child,extra,tls", [
    ("turn", ['allowed_peers = ["not-an-address"]'], True),
    ("iroh", [f'tls_listen = "127.0.0.1:{free_port()}"'], False),
    ("imap", [], False),
    ("shadowsocks", ['key = "too-short"', 'method = "2022-blake3-aes-256-gcm"'], True),
])
def test_a_bad_value_in_the_file_exits_78_and_waits(supervisor_factory, tmp_path, child, extra, tls):
    sup = supervised(supervisor_factory, tmp_path, child, extra=extra, tls=tls).start()
    status = sup.wait_state(child, "config error", timeout=30)
    assert status["last_exit"] == "exit 78", status
    time.sleep(1.5)  # longer than restart_delay_max: a retry would have come
    status = sup.status()[child]
    assert status["state"] == "config error" and status["restarts"] == 0, status
