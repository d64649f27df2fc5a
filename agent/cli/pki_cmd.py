"""`cpucompat pki init|issue`: a small certificate authority for mutual TLS.

Makes what the daemons and the CLI need: a CA, the coordinator's server
certificate with the names and addresses clients dial as SANs, one certificate
per host whose CN is the host id (the agent reports and serves with it), and
administrator certificates for `--admin`. Private keys are written 0600.
"""

from __future__ import annotations

import argparse
import datetime
import ipaddress
import os
from pathlib import Path
from typing import Any

from .common import EXIT_OK, CliError, number_in

KINDS = ("coordinator", "host", "admin")


def add_parser(sub: Any, name: str, help_text: str) -> None:
    p = sub.add_parser(name, help=help_text, description=__doc__)
    ps = p.add_subparsers(dest="pki_command", metavar="ACTION", required=True)
    init = ps.add_parser("init", help="create the CA (DIR/ca.pem, DIR/ca.key)")
    init.add_argument("--dir", required=True, metavar="DIR", help="folder for the PKI files")
    init.add_argument("--name", default="cpucompat CA", help="the CA's common name")
    init.add_argument("--days", type=number_in(1, 36500, integer=True), default=3650)
    init.add_argument("--force", action="store_true", help="replace an existing CA")
    init.set_defaults(run=run_init)
    issue = ps.add_parser(
        "issue",
        help="issue a certificate: coordinator, host HOST_ID or admin NAME",
        description="Writes DIR/NAME.pem and DIR/NAME.key (NAME is 'coordinator' for the "
        "coordinator). Clients verify the coordinator by the address they dial: give every "
        "DNS name (--dns) and IP address (--ip) they use.",
    )
    issue.add_argument("kind", choices=KINDS)
    issue.add_argument("name", nargs="?", help="host id (host) or administrator name (admin)")
    issue.add_argument("--dir", required=True, metavar="DIR", help="folder holding the CA")
    issue.add_argument("--dns", action="append", default=[], help="DNS name SAN (repeatable)")
    issue.add_argument("--ip", action="append", default=[], help="IP address SAN (repeatable)")
    issue.add_argument("--days", type=number_in(1, 3650, integer=True), default=397)
    issue.set_defaults(run=run_issue)


def _write(path: Path, data: bytes, private: bool) -> None:
    """Write ``data``; a private key is created 0600 and never readable by others, even briefly."""
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600 if private else 0o644)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)


def _key_pem(key: Any) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _name(cn: str) -> Any:
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def run_init(args: argparse.Namespace) -> int:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    folder = Path(args.dir)
    if (folder / "ca.key").exists() and not args.force:
        raise CliError(f"{folder / 'ca.key'} exists: keep it, or pass --force to replace the CA")
    folder.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(args.name))
        .issuer_name(_name(args.name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=args.days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    _write(folder / "ca.key", _key_pem(key), private=True)
    _write(folder / "ca.pem", cert.public_bytes(serialization.Encoding.PEM), private=False)
    print(f"CA written: {folder / 'ca.pem'} (give it to every daemon and client as --tls-ca)")
    print(f"CA key:     {folder / 'ca.key'} (0600; keep it off the hosts)")
    return EXIT_OK


def run_issue(args: argparse.Namespace) -> int:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    from ..names import valid_name

    folder = Path(args.dir)
    if args.kind == "coordinator":
        name = args.name or "coordinator"
        if not args.dns and not args.ip:
            raise CliError(
                "a coordinator certificate needs the names clients dial: --dns NAME and/or "
                "--ip ADDRESS (a certificate without them fails the TLS name check)"
            )
    elif not args.name:
        raise CliError(f"pki issue {args.kind} needs a NAME (the host id or administrator name)")
    else:
        name = args.name
    try:
        valid_name(name, f"{args.kind} name")
        ips = [ipaddress.ip_address(a) for a in args.ip]
    except ValueError as exc:
        raise CliError(str(exc)) from None
    try:
        ca_key = serialization.load_pem_private_key((folder / "ca.key").read_bytes(), None)
        ca_cert = x509.load_pem_x509_certificate((folder / "ca.pem").read_bytes())
    except (OSError, ValueError) as exc:
        raise CliError(
            f"cannot load the CA from {folder} ({exc}); run `cpucompat pki init`"
        ) from None
    dns = list(dict.fromkeys(([name] if args.kind == "host" else []) + args.dns))
    sans: list[x509.GeneralName] = [x509.DNSName(d) for d in dns]
    sans += [x509.IPAddress(ip) for ip in ips]
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(name))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=args.days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
    )
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    cert = builder.sign(ca_key, hashes.SHA256())  # type: ignore[arg-type]
    _write(folder / f"{name}.key", _key_pem(key), private=True)
    _write(folder / f"{name}.pem", cert.public_bytes(serialization.Encoding.PEM), private=False)
    print(f"{args.kind} certificate written: {folder / name}.pem, key {folder / name}.key (0600)")
    return EXIT_OK
