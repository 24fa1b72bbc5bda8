"""`chatmailctl ports`: the firewall ports of the enabled children, from the file or the running supervisor."""

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import bin_dir

ROOT = Path(__file__).resolve().parents[2]


def ports(config, *args):
    result = subprocess.run([str(bin_dir() / "chatmailctl"), "ports", "--config", str(config), *args],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout


def rows(config):
    data = json.loads(ports(config, "--json"))
    return data["source"], [(p["child"], p["protocol"], p["port"], p["port_end"]) for p in data["ports"]]


def test_development_configuration():
    text = ports(ROOT / "supervisor.conf")
    assert "turn         udp    49152-65535  127.0.0.1  TURN relayed traffic" in text
    source, found = rows(ROOT / "supervisor.conf")
    assert found == [("turn", "udp", 3478, 3478), ("turn", "tcp", 3478, 3478), ("turn", "tcp", 5349, 5349),
                     ("turn", "udp", 49152, 65535), ("iroh", "tcp", 3340, 3340), ("iroh", "tcp", 3341, 3341),
                     ("shadowsocks", "tcp", 8388, 8388), ("imap", "tcp", 1143, 1143), ("imap", "tcp", 1993, 1993)]


def test_production_example_and_its_nft_rules(tmp_path):
    source, found = rows(ROOT / "packaging" / "supervisor.conf")
    assert source == "file"
    assert found == [("turn", "udp", 3478, 3478), ("turn", "tcp", 3478, 3478), ("turn", "tcp", 5349, 5349),
                     ("turn", "udp", 49152, 65535), ("iroh", "tcp", 3340, 3340), ("iroh", "tcp", 443, 443),
                     ("shadowsocks", "tcp", 8388, 8388),
                     ("imap", "tcp", 143, 143), ("imap", "tcp", 993, 993)]
    rules = ports(ROOT / "packaging" / "supervisor.conf", "--nft")
    assert rules.count(" dport ") == len(found)
    if shutil.which("nft") is None:
        pytest.skip("nft is not installed")
    path = tmp_path / "chatmail.nft"
    path.write_text(rules)
    check = subprocess.run(["nft", "-c", "-f", str(path)], capture_output=True, text=True, timeout=60)
    if check.returncode != 0 and "Operation not permitted" in check.stderr:
        pytest.skip("nft -c needs CAP_NET_ADMIN")
    assert check.returncode == 0, check.stderr
    # The check is real: a broken rule fails it.
    path.write_text(rules.replace("dport 993", "dport 99300"))
    assert subprocess.run(["nft", "-c", "-f", str(path)], capture_output=True, timeout=60).returncode != 0


def test_children_disabled_in_the_file(tmp_path):
    text = (ROOT / "packaging" / "supervisor.conf").read_text()
    text = text.replace("[iroh]\nenabled = true", "[iroh]\nenabled = false")
    text = text.replace("[shadowsocks]\nenabled = true", "[shadowsocks]\nenabled = false")
    # Runs nothing: the state and control socket paths only need to be somewhere harmless.
    text = text.replace('"/var/lib/chatmail"', f'"{tmp_path}/state"').replace("/run/chatmail", f"{tmp_path}/run")
    config = tmp_path / "supervisor.conf"
    config.write_text(text)
    source, found = rows(config)
    assert source == "file"
    assert {child for child, *_ in found} == {"turn", "imap"}


def test_running_supervisor_state_and_status(supervisor_factory):
    """With the supervisor up its run-time state wins: `disable iroh` drops iroh's port; status lists each
    child's ports."""
    sup = supervisor_factory().start()
    sup.wait_state("iroh", "ready")
    source, found = rows(sup.config)
    assert source == "supervisor"
    assert ("iroh", "tcp", 23340, 23340) in found
    status = sup.status()
    assert status["turn"]["ports"] == ["23478/udp", "23478/tcp", "49152-65535/udp"]
    assert status["imap"]["ports"] == ["21143/tcp", "993/tcp"]
    assert "PORTS" in sup.ctl("status").stdout
    sup.ctl("disable", "iroh")
    sup.wait_state("iroh", "disabled")
    source, found = rows(sup.config)
    assert source == "supervisor" and not any(child == "iroh" for child, *_ in found)
    assert any(child == "turn" for child, *_ in found)


def test_saved_toggles_count_while_the_supervisor_is_down(supervisor_factory):
    """`disable` is saved in the state directory: with the supervisor stopped, `ports` still leaves the
    disabled child out (as the supervisor will when it starts again), and `enable` brings it back."""
    sup = supervisor_factory().start()
    sup.wait_state("iroh", "ready")
    sup.ctl("disable", "iroh")
    sup.wait_state("iroh", "disabled")
    assert sup.stop() == 0
    source, found = rows(sup.config)
    assert source == "file"
    assert not any(child == "iroh" for child, *_ in found), found
    assert any(child == "turn" for child, *_ in found)
    assert "saved enable/disable toggles" in ports(sup.config)
    # The supervisor reads the same toggle when it starts: iroh stays disabled.
    sup.start()
    sup.wait_state("iroh", "disabled")
    sup.ctl("enable", "iroh")
    sup.wait_state("iroh", "ready")
    assert sup.stop() == 0
    source, found = rows(sup.config)
    assert source == "file" and ("iroh", "tcp", 23340, 23340) in found
