"""Checks of the files in packaging/: the systemd unit and the production configuration.

Run with `python3 -m pytest -q Tests/integration/test_packaging.py`. Set CHATMAIL_BIN_DIR to
the directory holding the built chatmail-supervisor and chatmailctl (e.g. .build/debug) to
verify the unit against the real binary and to run `chatmailctl check-config`.

None of this needs systemd as PID 1; it needs `systemd-analyze` (package systemd).
"""

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGING = ROOT / "packaging"
UNIT = PACKAGING / "chatmail.service"
CONFIG = PACKAGING / "supervisor.conf"
INSTALLED_BINARY = "/usr/local/bin/chatmail-supervisor"

# Lines of `systemd-analyze verify` that are not about the unit's own settings: the man pages
# named in Documentation= are looked up with `man`, which is often absent in CI images.
# verify runs with --man=no, so these should not appear; they are ignored all the same.
DOCUMENTATION_NOISE = re.compile(r"Command 'man [^']*' failed|Can't show |man page")


def bin_dir():
    value = os.environ.get("CHATMAIL_BIN_DIR")
    return Path(value).resolve() if value else None


def systemd_analyze():
    path = shutil.which("systemd-analyze")
    if path is None:
        pytest.skip("systemd-analyze is not installed (Debian: apt-get install systemd)")
    return path


def unit_copy(directory, text=None):
    """Writes the unit (or `text`) to `directory` with ExecStart pointing at an existing executable.

    The installed path does not exist on a build machine, and verify reports a missing binary.
    """
    binary = "/bin/true"
    if bin_dir() is not None:
        built = bin_dir() / "chatmail-supervisor"
        assert os.access(built, os.X_OK), f"CHATMAIL_BIN_DIR is set but {built} is not an executable"
        binary = str(built)
    text = UNIT.read_text() if text is None else text
    assert f"ExecStart={INSTALLED_BINARY} " in text
    copy = directory / UNIT.name
    copy.write_text(text.replace(f"ExecStart={INSTALLED_BINARY} ", f"ExecStart={binary} "))
    return copy


def verify_problems(unit):
    """Runs `systemd-analyze verify` and returns its complaints about `unit`.

    verify exits 0 even for unknown keys and unparsable values, so its output is what counts.
    It names the file as "/path/chatmail.service:LINE: ..." for parse problems and as
    "chatmail.service: ..." for checks of the loaded unit (e.g. a missing ExecStart binary).
    Lines about other units (dependencies such as network-online.target) are not ours to fix.
    """
    result = subprocess.run(
        [systemd_analyze(), "verify", "--man=no", str(unit)], capture_output=True, text=True, timeout=120
    )
    output = (result.stdout + "\n" + result.stderr).splitlines()
    ours = [line for line in output if str(unit) in line or unit.name in line]
    problems = [line for line in ours if not DOCUMENTATION_NOISE.search(line)]
    if result.returncode != 0 and not ours:
        # A failure that names neither our unit nor a documentation lookup.
        problems.append(f"systemd-analyze verify exited {result.returncode}: {result.stderr.strip()}")
    return problems


def test_unit_verifies_cleanly(tmp_path):
    problems = verify_problems(unit_copy(tmp_path))
    assert problems == [], "systemd-analyze verify complains about the unit:\n" + "\n".join(problems)


@pytest.mark.parametrize(
    "edit, expected",
    [
        # Options from systemd 253+ that Debian 12 (252) ignores.
        (lambda text: text.replace("\nRestartSec=2s\n", "\nRestartSec=2s\nRestartSteps=5\n"), "RestartSteps"),
        (lambda text: text.replace("\nType=notify\n", "\nType=notify-reload\n"), "notify-reload"),
        (lambda text: text + "\n[Bogus]\nFoo=1\n", "Bogus"),
        (lambda text: text.replace("\nUMask=0027\n", "\nUMask=0027\nProtectHomes=yes\n"), "ProtectHomes"),
    ],
    ids=["RestartSteps", "notify-reload", "unknown-section", "misspelt-key"],
)
def test_verify_catches_bad_keys(tmp_path, edit, expected):
    """The check above can fail: a unit with a key systemd 252 ignores is reported."""
    text = UNIT.read_text()
    changed = edit(text)
    assert changed != text, "the edit did not apply; update this test to the unit"
    problems = verify_problems(unit_copy(tmp_path, changed))
    assert any(expected in line for line in problems), f"not reported: {expected}; got {problems}"


def test_verify_catches_missing_binary(tmp_path):
    copy = unit_copy(tmp_path)
    copy.write_text(re.sub(r"^ExecStart=\S+", "ExecStart=/nonexistent/chatmail-supervisor", copy.read_text(), flags=re.M))
    problems = verify_problems(copy)
    assert any("/nonexistent/chatmail-supervisor" in line for line in problems), problems


def test_security_exposure(tmp_path):
    """The sandboxing keeps `systemd-analyze security` at or below 2.5 ("OK")."""
    analyze = systemd_analyze()
    copy = unit_copy(tmp_path)
    result = subprocess.run(
        [analyze, "security", "--offline=true", "--threshold=25", "--no-pager", str(copy)],
        capture_output=True, text=True, timeout=120,
    )
    if "--offline" in result.stderr and re.search(r"unrecognized|[Uu]nknown option", result.stderr):
        pytest.skip("this systemd-analyze has no --offline (needs systemd 250+)")
    overall = [line for line in result.stdout.splitlines() if "Overall exposure level" in line]
    print("\n".join(overall))
    assert result.returncode == 0, (
        f"exposure above 2.5 (exit {result.returncode}): {overall or result.stderr.strip()}\n{result.stdout}"
    )
    assert overall, f"no exposure score printed:\n{result.stdout}\n{result.stderr}"


def chatmailctl():
    directory = bin_dir()
    if directory is None:
        pytest.skip("CHATMAIL_BIN_DIR is not set (point it at the directory with the built chatmailctl)")
    tool = directory / "chatmailctl"
    if not os.access(tool, os.X_OK):
        pytest.skip(f"no chatmailctl in CHATMAIL_BIN_DIR={directory}")
    return tool


def check_config(path, tmp_path):
    """check-config loads the certificates as the children would: the copy checked names a real pair."""
    tls = tmp_path / "tls"
    tls.mkdir()
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-subj", "/CN=chat.example.org", "-days", "2", "-keyout", str(tls / "privkey.pem"),
                    "-out", str(tls / "fullchain.pem")], check=True, capture_output=True)
    copy = tmp_path / "checked.conf"
    copy.write_text(path.read_text().replace("/etc/chatmail/tls/", f"{tls}/"))
    result = subprocess.run(
        [str(chatmailctl()), "check-config", str(copy)], capture_output=True, text=True, timeout=60
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"check-config exited {result.returncode}:\n{output}"
    assert "OK" in output, output


def test_production_config_checks(tmp_path):
    check_config(CONFIG, tmp_path)


def test_production_config_optional_keys_are_accepted(tmp_path):
    """The keys left commented out at their defaults are real keys: uncommented, they still pass."""
    chatmailctl()  # skips before anything else when there is no binary
    pattern = re.compile(r"^# ([a-z_]+ = \S.*)$", re.M)
    text = CONFIG.read_text()
    optional = pattern.findall(text)
    assert optional, "no commented-out keys found in packaging/supervisor.conf"
    copy = tmp_path / "supervisor.conf"
    copy.write_text(pattern.sub(r"\1", text))
    check_config(copy, tmp_path)
