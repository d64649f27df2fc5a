"""`--metrics-listen`: both daemons' Prometheus endpoint, with the gRPC port's TLS rules.

Without a server certificate the endpoint serves plain HTTP on loopback only (a bare
port means 127.0.0.1); beyond loopback it needs the daemon's --tls-cert/--tls-key
(HTTPS with the same certificate, re-read on SIGHUP like the gRPC port's) or
--insecure. With --tls-ca the scraper must present a client certificate signed by
that CA, as every gRPC client must. Each daemon passes its own CollectorRegistry, so
two daemons in one process (tests) never share a metric.
"""

from __future__ import annotations

import argparse
import socket
import ssl
import threading
from socketserver import ThreadingMixIn
from typing import Any, cast
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, make_wsgi_app

from .addresses import is_loopback, split_host_port
from .errors import InputError
from .tls import TlsFiles, check_server_pair, serves_tls


def metrics_address(text: str) -> str:
    """HOST:PORT, or a bare PORT meaning 127.0.0.1:PORT (port 0 picks a free one)."""
    text = text.strip()
    if text.isdigit():
        text = f"127.0.0.1:{text}"
    _, port = split_host_port(text)
    if port is None or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise argparse.ArgumentTypeError(
            f"metrics address {text!r} needs a port 0-65535: PORT or HOST:PORT, e.g. 127.0.0.1:9464"
        )
    return text


def add_metrics_option(p: argparse.ArgumentParser, default_port: int) -> None:
    """The daemons' --metrics-listen (added before add_config_options: it is a config key)."""
    p.add_argument(
        "--metrics-listen",
        type=metrics_address,
        metavar="ADDR",
        help=f"serve Prometheus metrics at http(s)://ADDR/metrics (e.g. {default_port} for "
        f"127.0.0.1:{default_port}); beyond loopback only with --tls-cert/--tls-key (HTTPS; "
        "--tls-ca then asks scrapers for a client certificate) or --insecure (default: off)",
    )


def check_metrics_address(listen: str, tls: TlsFiles, insecure: bool) -> None:
    """Refuse plain HTTP beyond loopback, as the gRPC port refuses plaintext there."""
    host, _ = split_host_port(listen)
    if serves_tls(tls) or insecure or is_loopback(host):
        return
    raise InputError(
        f"refusing to serve metrics over plain HTTP on {listen}: {host or 'every interface'} "
        "is not a loopback address; give --tls-cert and --tls-key (HTTPS), use "
        "--metrics-listen 127.0.0.1:PORT, or pass --insecure"
    )


class _QuietHandler(WSGIRequestHandler):
    timeout = 30  # a scraper that connects and says nothing does not hold a thread for ever

    def log_message(self, format: str, *args: Any) -> None:
        """Scrapes every few seconds would fill the daemon's log."""


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True
    tls_context: ssl.SSLContext | None = None

    def get_request(self) -> tuple[Any, Any]:
        sock, addr = self.socket.accept()
        context = self.tls_context
        if context is not None:  # handshake in the request's own thread, not the acceptor
            sock = context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        return sock, addr

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A scraper that fails the TLS handshake or hangs up is not the daemon's error."""


def _tls_context(tls: TlsFiles) -> ssl.SSLContext:
    cert, key, ca = tls.read()
    if not cert or not key:
        raise InputError("TLS needs both --tls-cert and --tls-key")
    check_server_pair(cert, key, ca)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    assert tls.cert and tls.key
    context.load_cert_chain(tls.cert, tls.key)
    if tls.ca:
        context.load_verify_locations(cafile=tls.ca)
        context.verify_mode = ssl.CERT_REQUIRED
    return context


class MetricsEndpoint:
    """`/metrics` of one registry over HTTP or HTTPS, on its own threads."""

    def __init__(self, listen: str, registry: CollectorRegistry, tls: TlsFiles) -> None:
        host, port = split_host_port(listen)
        self.tls = tls if serves_tls(tls) else None
        family = socket.AF_INET6 if ":" in (host or "") else socket.AF_INET
        server_class = type("_MetricsServer", (_Server,), {"address_family": family})
        try:
            self.server = cast(
                _Server,
                make_server(
                    host or ("::" if family == socket.AF_INET6 else "0.0.0.0"),
                    int(port or 0),
                    make_wsgi_app(registry),
                    server_class=server_class,
                    handler_class=_QuietHandler,
                ),
            )
        except OSError as exc:
            raise InputError(
                f"cannot serve metrics on {listen}: {exc.strerror or exc}; choose another "
                "--metrics-listen address or port"
            ) from None
        if self.tls is not None:
            try:
                self.server.tls_context = _tls_context(self.tls)
            except (InputError, ssl.SSLError, OSError) as exc:
                self.server.server_close()
                raise InputError(f"metrics endpoint: {exc}") from None
        shown = f"[{host}]" if family == socket.AF_INET6 else host
        self.url = f"{'https' if self.tls else 'http'}://{shown}:{self.server.server_port}/metrics"
        self._thread = threading.Thread(
            target=self.server.serve_forever, name="metrics-http", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def reload(self) -> str:
        """Re-read the certificate for new connections (SIGHUP); a bad file keeps the old."""
        if self.tls is None:
            return "metrics endpoint: plain HTTP, no certificate to re-read"
        try:
            self.server.tls_context = _tls_context(self.tls)
        except (InputError, ssl.SSLError, OSError) as exc:
            return f"metrics endpoint: TLS reload failed, keeping the previous certificate: {exc}"
        return f"metrics endpoint: TLS certificate reloaded from {self.tls.cert}"

    def stop(self) -> None:
        if self._thread.is_alive():
            self.server.shutdown()
        self.server.server_close()
