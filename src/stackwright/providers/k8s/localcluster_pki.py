"""The local cluster's certificates and keys, made as envtest makes them.

One CA signs the API server's serving certificate and an admin client certificate in the
``system:masters`` group; a separate key signs service-account tokens. They are made once
per cluster folder and kept, so a restarted cluster keeps its kubeconfig and its tokens.
Keys are ECDSA P-256: the API server accepts them and they take microseconds to make.
"""

from __future__ import annotations

import base64
import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

SERVICE_IP = "10.0.0.1"
"""The first address of the service range (``--service-cluster-ip-range=10.0.0.0/16``):
the in-cluster ``kubernetes`` service, so the serving certificate names it."""

SERVING_NAMES = ["localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc",
                 "kubernetes.default.svc.cluster.local"]
ADMIN_USER = "stackwright-admin"
ADMIN_GROUP = "system:masters"


@dataclass(frozen=True)
class Pki:
    """Where one cluster's certificates and keys are (PEM files in ``folder``)."""

    folder: Path
    ca_cert: Path
    ca_key: Path
    serving_cert: Path
    serving_key: Path
    admin_cert: Path
    admin_key: Path
    sa_key: Path
    sa_pub: Path

    @classmethod
    def at(cls, folder: Path) -> Pki:
        names = ["ca.crt", "ca.key", "apiserver.crt", "apiserver.key", "admin.crt", "admin.key",
                 "sa.key", "sa.pub"]
        return cls(folder, *(folder / name for name in names))


def ensure_pki(folder: Path) -> Pki:
    """The certificates in ``folder``, made now if the folder has none."""
    pki = Pki.at(folder)
    if not pki.sa_pub.exists():
        folder.mkdir(parents=True, exist_ok=True)
        _make(pki)
    return pki


def _make(pki: Pki) -> None:

    ca_key = _new_key()
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "stackwright-local-ca")])
    ca = _sign(_builder(ca_name, ca_name, ca_key.public_key())
               .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
               .add_extension(_usage(cert_sign=True), critical=True), ca_key)
    _write(pki.ca_cert, pki.ca_key, ca, ca_key)

    sans: list[x509.GeneralName] = [x509.DNSName(n) for n in SERVING_NAMES]
    sans += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ("127.0.0.1", SERVICE_IP)]
    serving_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kube-apiserver")])
    _issue(pki.serving_cert, pki.serving_key, ca, ca_key, serving_name,
           ExtendedKeyUsageOID.SERVER_AUTH, x509.SubjectAlternativeName(sans))

    admin_name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, ADMIN_GROUP),
                            x509.NameAttribute(NameOID.COMMON_NAME, ADMIN_USER)])
    _issue(pki.admin_cert, pki.admin_key, ca, ca_key, admin_name, ExtendedKeyUsageOID.CLIENT_AUTH)

    sa_key = _new_key()
    _write_key(pki.sa_key, sa_key)
    pki.sa_pub.write_bytes(sa_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))


def _issue(cert_path: Path, key_path: Path, ca: x509.Certificate, ca_key: ec.EllipticCurvePrivateKey,
           subject: x509.Name, purpose: x509.ObjectIdentifier,
           sans: x509.SubjectAlternativeName | None = None) -> None:

    key = _new_key()
    builder = (_builder(subject, ca.subject, key.public_key())
               .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
               .add_extension(_usage(cert_sign=False), critical=True)
               .add_extension(x509.ExtendedKeyUsage([purpose]), critical=False))
    if sans is not None:
        builder = builder.add_extension(sans, critical=False)
    _write(cert_path, key_path, _sign(builder, ca_key), key)


def _new_key() -> ec.EllipticCurvePrivateKey:

    return ec.generate_private_key(ec.SECP256R1())


def _builder(subject: x509.Name, issuer: x509.Name,
             public_key: ec.EllipticCurvePublicKey) -> x509.CertificateBuilder:

    now = datetime.datetime.now(datetime.timezone.utc)
    return (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer)
            .public_key(public_key).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=3650)))


def _usage(*, cert_sign: bool) -> x509.KeyUsage:

    return x509.KeyUsage(digital_signature=True, key_encipherment=not cert_sign,
                         key_cert_sign=cert_sign, crl_sign=cert_sign, content_commitment=False,
                         data_encipherment=False, key_agreement=False, encipher_only=False,
                         decipher_only=False)


def _sign(builder: x509.CertificateBuilder, key: ec.EllipticCurvePrivateKey) -> x509.Certificate:

    return builder.sign(key, hashes.SHA256())


def _write(cert_path: Path, key_path: Path, cert: x509.Certificate,
           key: ec.EllipticCurvePrivateKey) -> None:

    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    _write_key(key_path, key)


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:

    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    path.touch(mode=0o600)
    path.write_bytes(pem)


def kubeconfig(pki: Pki, server: str, name: str) -> dict[str, Any]:
    """An admin kubeconfig for ``server`` with the certificates inlined, so it can be
    copied anywhere; its one context is ``name``."""
    def inline(path: Path) -> str:
        return base64.b64encode(path.read_bytes()).decode()

    return {
        "apiVersion": "v1", "kind": "Config", "preferences": {},
        "clusters": [{"name": name, "cluster": {
            "server": server, "certificate-authority-data": inline(pki.ca_cert)}}],
        "users": [{"name": name, "user": {
            "client-certificate-data": inline(pki.admin_cert),
            "client-key-data": inline(pki.admin_key)}}],
        "contexts": [{"name": name, "context": {"cluster": name, "user": name}}],
        "current-context": name,
    }
