"""TLS material for gRPC servers and channels, shared by the daemons and the CLI."""

from __future__ import annotations

from dataclasses import dataclass

import grpc

from .errors import InputError


@dataclass(frozen=True)
class TlsFiles:
    """PEM files for one side of a connection."""

    cert: str | None = None
    key: str | None = None
    ca: str | None = None

    @property
    def enabled(self) -> bool:
        return bool(self.cert or self.ca)

    def read(self) -> tuple[bytes | None, bytes | None, bytes | None]:
        def load(path: str | None) -> bytes | None:
            if not path:
                return None
            try:
                with open(path, "rb") as fh:
                    return fh.read()
            except OSError as exc:
                raise InputError(f"cannot read TLS file {path}: {exc.strerror}") from None

        return load(self.cert), load(self.key), load(self.ca)


def server_credentials(tls: TlsFiles) -> grpc.ServerCredentials:
    cert, key, ca = tls.read()
    if not cert or not key:
        raise InputError("TLS needs both --tls-cert and --tls-key")
    return grpc.ssl_server_credentials(
        [(key, cert)], root_certificates=ca, require_client_auth=ca is not None
    )


def channel_credentials(tls: TlsFiles) -> grpc.ChannelCredentials:
    cert, key, ca = tls.read()
    if (cert is None) != (key is None):
        raise InputError("a client certificate needs both --tls-cert and --tls-key")
    return grpc.ssl_channel_credentials(
        root_certificates=ca, private_key=key, certificate_chain=cert
    )


def serves_tls(tls: TlsFiles) -> bool:
    """A server speaks TLS only with its own certificate and key; a CA alone changes nothing."""
    return bool(tls.cert and tls.key)


def check_listen_address(listen: str, tls: TlsFiles, insecure: bool) -> None:
    """Without a server certificate, refuse anything but loopback unless --insecure was given.

    Loopback is judged by the resolved address, never by how the name is spelt.
    """
    from .addresses import is_loopback, listen_address, split_host_port

    listen_address(listen)
    if serves_tls(tls) or insecure or listen.startswith("unix:"):
        return
    host, _ = split_host_port(listen)
    if not is_loopback(host):
        raise InputError(
            f"refusing to serve plaintext on {listen}: {host or 'every interface'} is not a "
            "loopback address; give --tls-cert and --tls-key (and --tls-ca for mutual TLS), "
            "listen on 127.0.0.1, or pass --insecure"
        )


def check_server_pair(cert: bytes, key: bytes, ca: bytes | None) -> None:
    """Refuse PEM that gRPC would take now and fail on at the next handshake."""
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import (
        Encoding,
        PublicFormat,
        load_pem_private_key,
    )

    try:
        leaf = x509.load_pem_x509_certificate(cert)
        private = load_pem_private_key(key, password=None)
        if ca is not None:
            x509.load_pem_x509_certificates(ca)
    except (ValueError, TypeError) as exc:
        raise InputError(f"unusable TLS certificate, key or CA: {exc}") from None
    spki = (Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    if leaf.public_key().public_bytes(*spki) != private.public_key().public_bytes(*spki):
        raise InputError("the TLS key does not belong to the certificate")


class ReloadableServerTls:
    """Server credentials whose files are re-read on `reload()` (SIGHUP) for new connections.

    gRPC asks the fetcher at every handshake; it hands over a new configuration once
    after a successful reload, else None (keep the current one). A bad new file keeps
    the old certificates and says why.
    """

    def __init__(self, tls: TlsFiles) -> None:
        import threading

        self.tls = tls
        self._lock = threading.Lock()
        self._pending: grpc.ServerCertificateConfiguration | None = None
        self._initial = self._load()

    def _load(self) -> grpc.ServerCertificateConfiguration:
        cert, key, ca = self.tls.read()
        if not cert or not key:
            raise InputError("TLS needs both --tls-cert and --tls-key")
        check_server_pair(cert, key, ca)
        return grpc.ssl_server_certificate_configuration([(key, cert)], root_certificates=ca)

    def credentials(self) -> grpc.ServerCredentials:
        return grpc.dynamic_ssl_server_credentials(
            self._initial, self._fetch, require_client_authentication=self.tls.ca is not None
        )

    def _fetch(self) -> grpc.ServerCertificateConfiguration | None:
        with self._lock:
            pending, self._pending = self._pending, None
        return pending

    def reload(self) -> str:
        """Re-read the files; one line for the log saying what happened."""
        try:
            loaded = self._load()
        except InputError as exc:
            return f"TLS reload failed, keeping the previous certificates: {exc}"
        with self._lock:
            self._pending = loaded
        return f"TLS certificates reloaded from {self.tls.cert} (new connections use them)"
