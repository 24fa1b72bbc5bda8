"""`chatmailctl check-config` refuses what a child would refuse at start, with file, line and key.

Each case breaks one rule that a child checks when it starts (not the loader's own rules, which
test_supervisor covers): check-config must refuse the file naming that key at its line, and the child
itself, run on the same file, must exit 78 with the same located error. Binds nothing (every child
stops before it listens), so it needs no port lock.
"""

import subprocess

import pytest

from conftest import bin_dir

BASE = {
    "supervisor": {"state_dir": '"state"', "runtime_dir": '"run"'},
    "tls": {"self_signed": "true", "names": '["chat.example"]'},
    "turn": {"listen": '"127.0.0.1:3478"', "host": '"127.0.0.1"', "secret": '"s"'},
    "iroh": {"listen": '"127.0.0.1:3340"'},
    "shadowsocks": {"listen": '"127.0.0.1:8388"'},
    "imap": {"listen": '"127.0.0.1:1143"', "tls_listen": '"127.0.0.1:1993"', "mail_domain": '"chat.example"'},
}

# (child, section, key located, changes: {section: {key: value or None to drop}})
CASES = [
    ("turn", "turn", "allowed_peers", {"turn": {"allowed_peers": '["10.0.0.0/33"]'}}),
    ("turn", "turn", "denied_peers", {"turn": {"denied_peers": '["not-a-range"]'}}),
    ("turn", "turn", "relay_addresses", {"turn": {"host": '"turn.example"', "relay_addresses": '["0.0.0.0"]'}}),
    ("turn", "turn", "relay_addresses", {"turn": {"relay_addresses": "[]"}}),
    ("turn", "turn", "external_addresses", {"turn": {"external_addresses": '["0.0.0.0"]'}}),
    ("turn", "turn", "tls_listen", {"turn": {"tls_listen": '"turn.example:5349"'}}),
    ("shadowsocks", "shadowsocks", "names", {"shadowsocks": {"names": "[]", "addresses": "[]"}}),
    ("shadowsocks", "shadowsocks", "key", {"shadowsocks": {"key": '"c2hvcnQ="'}}),
    ("shadowsocks", "shadowsocks", "allowed_ports", {"shadowsocks": {"allowed_ports": "[]"}}),
    ("imap", "tls", "certificate",
     {"tls": {"self_signed": None, "certificate": '"missing.pem"', "key": '"missing.key"'}}),
    ("imap", "tls", None, {"tls": {"self_signed": None}}),
]


def render(changes):
    lines = []
    for section, keys in BASE.items():
        keys = dict(keys)
        for key, value in changes.get(section, {}).items():
            if value is None:
                keys.pop(key, None)
            else:
                keys[key] = value
        lines.append(f"[{section}]")
        lines += [f"{key} = {value}" for key, value in keys.items()]
        lines.append("")
    return "\n".join(lines)


def line_of(text, section, key):
    current = None
    for number, line in enumerate(text.splitlines(), 1):
        if line.startswith("["):
            current = line.strip("[]")
            if key is None and current == section:
                return number
        elif current == section and line.split(" = ")[0] == key:
            return number
    raise AssertionError(f"{section}.{key} not in the file")


def run(*args):
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=60,
                          env={"PATH": "/usr/bin:/bin"})


def test_the_base_file_passes(tmp_path):
    config = tmp_path / "supervisor.conf"
    config.write_text(render({}))
    result = run(bin_dir() / "chatmailctl", "check-config", config)
    assert result.returncode == 0 and "OK" in result.stdout, result.stderr


@pytest.mark.parametrize("child,section,key,changes", CASES, ids=[f"{c[1]}.{c[2]}" for c in CASES])
def test_refused_with_file_line_and_key_as_the_child_refuses_it(tmp_path, child, section, key, changes):
    config = tmp_path / "supervisor.conf"
    text = render(changes)
    config.write_text(text)
    located = f"{config}:{line_of(text, section, key)}: [{section}]" + (f" {key}:" if key else ":")

    check = run(bin_dir() / "chatmailctl", "check-config", config)
    assert check.returncode == 1, check.stdout
    assert located in check.stderr, check.stderr

    started = run(bin_dir() / f"chatmail-{child}", "--config", config)
    assert started.returncode == 78, started.stdout + started.stderr
    assert located in started.stdout + started.stderr, started.stdout + started.stderr
