"""A test CA that the real iroh clients (PyPI `iroh` 0.35 and 1.x) trust, for relaying through our HTTPS front.

Both generations verify a relay's certificate against Mozilla's roots compiled into `libiroh_ffi.so` (the
`webpki-roots` crate; iroh 0.35 `ClientBuilder::connect`, iroh 1.x `CaTlsConfig::default()`), and neither's Python
bindings take other roots, a verifier switch or an environment variable for it (the skip-verify options exist only
in test builds of iroh). `webpki-roots` keeps each trust anchor as two plain DER byte strings, its subject name and
its SubjectPublicKeyInfo (both without their outer SEQUENCE header), and rustls accepts a certificate whose issuer
name is byte for byte an anchor's subject and whose signature verifies with that anchor's key.

So `TestCA.patched_copy` copies an installed `iroh` package into a directory of the test's and, in the copy's
library only, overwrites the public key of one anchor, ISRG Root X2 (ECDSA P-384), with a P-384 key made for this
test: same curve, same length, nothing else moves. Certificates from `TestCA.issue` (issuer: ISRG Root X2's exact
name, signed with that key) then verify in the copy, and still fail in the installed package. The venvs are never
written to, and nothing patched outlives the test's tmp dir.

`handshake` tells whether a client script trusts a certificate, so a test can show that the patch took (and that
the installed package still refuses). Run as a script, this module is that check's other end in a fresh network
namespace: `unshare -n python3 iroh_test_ca.py PYTHON CLIENT_SCRIPT CERTIFICATE KEY`.
"""

import datetime
import ipaddress
import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.name import _ASN1Type
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

# ISRG Root X2, the public Let's Encrypt root (/etc/ssl/certs/ISRG_Root_X2.pem): its subject name and its
# SubjectPublicKeyInfo, DER.
ANCHOR_SUBJECT = bytes.fromhex(
    "304f310b300906035504061302555331293027060355040a1320496e7465726e65742053656375726974792052657365617263682047"
    "726f7570311530130603550403130c4953524720526f6f74205832")
ANCHOR_SPKI = bytes.fromhex(
    "3076301006072a8648ce3d020106052b8104002203620004cd9bd59f80830aec094af3164a3e5ccf77acde67050d1d07b6dc16fb5a8b14"
    "dbe27160c4ba459511898eea06dff72a161ca4b9c5c532e003e01e8218388bd745d80a6a6ee60077fb02517d22d80a6e9a5b77dff0fa41"
    "ec39dc75ca68070c1fea")
ANCHOR_NAME = x509.Name([
    x509.NameAttribute(NameOID.COUNTRY_NAME, "US", _type=_ASN1Type.PrintableString),
    x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Internet Security Research Group", _type=_ASN1Type.PrintableString),
    x509.NameAttribute(NameOID.COMMON_NAME, "ISRG Root X2", _type=_ASN1Type.PrintableString),
])
LIBRARY = "libiroh_ffi.so"


def spki(key) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.DER,
                                         serialization.PublicFormat.SubjectPublicKeyInfo)


class TestCA:
    """ISRG Root X2's name with a key of our own."""

    __test__ = False  # not a pytest test class

    def __init__(self):
        assert ANCHOR_NAME.public_bytes() == ANCHOR_SUBJECT, "the issuer name must be the anchor's, byte for byte"
        self.key = ec.generate_private_key(ec.SECP384R1())
        now = datetime.datetime.now(datetime.timezone.utc)
        self.certificate = (
            x509.CertificateBuilder().subject_name(ANCHOR_NAME).issuer_name(ANCHOR_NAME)
            .public_key(self.key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(self.key, hashes.SHA384()))

    def patched_copy(self, package: Path, into: Path) -> Path:
        """Copies the `iroh` package directory `package` to `into`/iroh with the anchor's key replaced by ours in
        its library; returns `into`, for PYTHONPATH. Fails unless the anchor's key is there exactly once."""
        copy = into / "iroh"
        shutil.copytree(package, copy, ignore=shutil.ignore_patterns("__pycache__"))
        library = copy / LIBRARY
        data = library.read_bytes()
        # Stored without the outer SEQUENCE header; the rest (algorithm, curve, point) has the same length in ours.
        old, new = ANCHOR_SPKI[2:], spki(self.key)[2:]
        assert len(old) == len(new)
        count = data.count(old)
        assert count == 1, f"ISRG Root X2's key is in {package / LIBRARY} {count} times, not once"
        assert data.count(ANCHOR_SUBJECT[2:]) == 1, "and so is its subject name"
        library.write_bytes(data.replace(old, new))
        return into

    def issue(self, directory: Path, names) -> tuple[Path, Path]:
        """A server certificate for `names` (IP addresses or DNS names) signed by this CA: (certificate, key)
        PEM files in `directory`."""
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.timezone.utc)
        alternatives = []
        for name in names:
            try:
                alternatives.append(x509.IPAddress(ipaddress.ip_address(name)))
            except ValueError:
                alternatives.append(x509.DNSName(name))
        certificate = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
            .issuer_name(ANCHOR_NAME).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(alternatives), critical=False)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .sign(self.key, hashes.SHA384()))
        certificate_path, key_path = directory / "relay-cert.pem", directory / "relay-key.pem"
        certificate_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
        key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
        return certificate_path, key_path

    def write(self, path: Path) -> Path:
        """This CA's certificate as PEM at `path`, for verifying with OpenSSL (Python's ssl, curl)."""
        path.write_bytes(self.certificate.public_bytes(serialization.Encoding.PEM))
        return path


def handshake(python, client, certificate, key, pythonpath=None) -> str:
    """How the real-client script `client` (run by `python`, with `pythonpath` first on its path) ends its first
    TLS handshake with a relay at https://127.0.0.1:PORT presenting `certificate`: "ok", or the reason of the alert
    it sent (OpenSSL's name, e.g. "TLSV1_ALERT_DECRYPT_ERROR"). In a fresh network namespace (needs root), where
    nothing else is reachable, so the clients dial the relay at once."""
    env = {**os.environ, "PYTHONPATH": str(pythonpath)} if pythonpath else None
    run = subprocess.run(["unshare", "-n", sys.executable, __file__, str(python), str(client), str(certificate),
                          str(key)], env=env, capture_output=True, text=True, timeout=40)
    lines = [line for line in run.stdout.splitlines() if line.startswith("{")]
    assert lines, f"no result; stderr:\n{run.stderr[-3000:]}"
    return json.loads(lines[-1])["handshake"]


def _serve_one_handshake(python, client, certificate, key):
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(certificate, key)
    with socket.create_server(("127.0.0.1", 0)) as server:
        server.settimeout(20)
        url = f"https://127.0.0.1:{server.getsockname()[1]}"
        process = subprocess.Popen([python, client, url, "1000"], stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)
        try:
            connection, _ = server.accept()
            connection.settimeout(10)
            try:
                context.wrap_socket(connection, server_side=True).close()
                outcome = "ok"
            except OSError as error:  # ssl.SSLError for an alert
                outcome = getattr(error, "reason", None) or repr(error)
        finally:
            process.kill()
            process.wait()
    print(json.dumps({"handshake": outcome}), flush=True)


if __name__ == "__main__":
    _serve_one_handshake(*sys.argv[1:5])
