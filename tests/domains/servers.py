"""Debian's pebble (an ACME test CA) and nginx, started by the tests on loopback, on ephemeral ports.

pebble serves its directory over HTTPS with a certificate made here; it validates HTTP-01 by asking the
tests' DNS server for the domain's address (`-dnsserver`) and connecting to `http_port` there, which is
nginx's plain-HTTP port, proxied to the live `cobrador web` as the shipped deploy/nginx-cobrador.conf does.
"""

import datetime as dt
import ipaddress
import json
import os
import pwd
import shutil
import socket
import ssl
import subprocess
import time
import urllib.request
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.processes import free_port

PEBBLE = shutil.which("pebble") or "/usr/bin/pebble"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
DEPLOY_CONFIG = Path(__file__).resolve().parents[2] / "deploy" / "nginx-cobrador.conf"


def have_servers() -> bool:
    return os.path.exists(PEBBLE) and os.path.exists(NGINX)


def _wait_for_port(port: int, process: subprocess.Popen, log: Path, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args[0]} exited: {log.read_text()[-2000:]}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"{process.args[0]} did not listen on {port}: {log.read_text()[-2000:]}")


def make_server_certificate(directory: Path) -> tuple[Path, Path, Path]:
    """A throwaway CA and a certificate for 127.0.0.1 / localhost signed by it: (ca, cert, key) paths."""
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "cobrador tests pebble listener CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(hours=1))
          .not_valid_after(now + dt.timedelta(days=30))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                       data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                       crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(hours=1)).not_valid_after(now + dt.timedelta(days=30))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                        x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    paths = directory / "listener-ca.pem", directory / "listener-cert.pem", directory / "listener-key.pem"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return paths


class Pebble:
    def __init__(self, directory: Path, *, dns_address: str, http_port: int, validity_days: int = 90):
        directory.mkdir(parents=True, exist_ok=True)
        self.ca_bundle, cert, key = make_server_certificate(directory)
        self.port, self.management_port = free_port(), free_port()
        config = {"pebble": {
            "listenAddress": f"127.0.0.1:{self.port}", "managementListenAddress": f"127.0.0.1:{self.management_port}",
            "certificate": str(cert), "privateKey": str(key), "httpPort": http_port, "tlsPort": free_port(),
            "ocspResponderURL": "", "externalAccountBindingRequired": False,
            "certificateValidityPeriod": validity_days * 86400}}
        config_path = directory / "pebble-config.json"
        config_path.write_text(json.dumps(config))
        self.log = directory / "pebble.log"
        env = {**os.environ, "PEBBLE_VA_NOSLEEP": "1", "PEBBLE_WFE_NONCEREJECT": "0", "PEBBLE_AUTHZREUSE": "0"}
        self.process = subprocess.Popen([PEBBLE, "-config", str(config_path), "-dnsserver", dns_address],
                                        stdout=self.log.open("w"), stderr=subprocess.STDOUT, env=env)
        _wait_for_port(self.port, self.process, self.log)
        _wait_for_port(self.management_port, self.process, self.log)
        self.directory_url = f"https://127.0.0.1:{self.port}/dir"

    def root_pem(self) -> bytes:
        """The root that signs the issued chains, from pebble's management endpoint."""
        context = ssl.create_default_context(cafile=str(self.ca_bundle))
        with urllib.request.urlopen(f"https://127.0.0.1:{self.management_port}/roots/0", context=context) as answer:
            return answer.read()

    def stop(self) -> None:
        _stop(self.process)


class Nginx:
    """deploy/nginx-cobrador.conf with its ports, certificate directory and upstream replaced."""

    def __init__(self, directory: Path, *, cert_dir: Path, upstream: str):
        directory.mkdir(parents=True, exist_ok=True)
        self.http_port, self.https_port = free_port(), free_port()
        site = DEPLOY_CONFIG.read_text()
        for old, new in (("listen 80;", f"listen 127.0.0.1:{self.http_port};"),
                         ("listen 443 ssl;", f"listen 127.0.0.1:{self.https_port} ssl;"),
                         ("/var/lib/cobrador/certs", str(cert_dir)),
                         ("127.0.0.1:8000", upstream)):
            assert old in site, f"{old!r} is not in {DEPLOY_CONFIG}"
            site = site.replace(old, new)
        (directory / "site.conf").write_text(site)
        user = pwd.getpwuid(os.getuid()).pw_name
        temp = directory / "temp"
        temp.mkdir(exist_ok=True)
        main = f"""
{"user " + user + ";" if os.getuid() == 0 else ""}
daemon off;
worker_processes 1;
pid {directory}/nginx.pid;
error_log {directory}/error.log info;
events {{ worker_connections 64; }}
http {{
    access_log {directory}/access.log;
    client_body_temp_path {temp}/body;
    proxy_temp_path {temp}/proxy;
    fastcgi_temp_path {temp}/fastcgi;
    uwsgi_temp_path {temp}/uwsgi;
    scgi_temp_path {temp}/scgi;
    include {directory}/site.conf;
}}
"""
        (directory / "nginx.conf").write_text(main)
        self.log = directory / "error.log"
        self.log.touch()
        self.process = subprocess.Popen([NGINX, "-p", str(directory), "-c", str(directory / "nginx.conf")],
                                        stdout=(directory / "stdout.log").open("w"), stderr=subprocess.STDOUT)
        _wait_for_port(self.http_port, self.process, self.log)
        _wait_for_port(self.https_port, self.process, self.log)

    def stop(self) -> None:
        _stop(self.process)


def https_get(port: int, hostname: str, path: str, *, cafile: Path) -> tuple[int, bytes, x509.Certificate]:
    """GET over TLS to 127.0.0.1:port with SNI `hostname`, verified against `cafile` (and for `hostname`)."""
    context = ssl.create_default_context(cafile=str(cafile))
    with socket.create_connection(("127.0.0.1", port), timeout=15) as raw:
        with context.wrap_socket(raw, server_hostname=hostname) as tls:
            peer = x509.load_der_x509_certificate(tls.getpeercert(binary_form=True))
            tls.sendall(f"GET {path} HTTP/1.0\r\nHost: {hostname}\r\nConnection: close\r\n\r\n".encode())
            data = b""
            while chunk := tls.recv(65536):
                data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    return status, body, peer


def _stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
