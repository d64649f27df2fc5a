"""`cpucompat coordinator`: run the coordinator daemon."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any

from cpucompat.agent.addresses import listen_error
from cpucompat.agent.cli.common import (
    EXIT_OK,
    CliError,
    add_config_options,
    add_tls_options,
    address_type,
    default_state_dir,
    number_in,
    on_reload_signal,
    on_stop_signal,
    print_config,
    resolve_config,
    tls_files,
)
from cpucompat.agent.errors import InputError
from cpucompat.agent.metrics_http import add_metrics_option


def add_parser(sub: Any, name: str, help_text: str) -> None:
    p = sub.add_parser(
        name,
        help=help_text,
        description=(
            "Run the coordinator: it keeps every host's profile and history in SQLite (or "
            "PostgreSQL with --db postgresql://...), answers "
            "compatibility queries and owns each cluster's fail-over policy. Without TLS it "
            "listens on loopback only unless --insecure is given. Prints 'listening on ADDR' "
            "once ready."
        ),
    )
    p.add_argument(
        "--listen",
        default="127.0.0.1:7443",
        type=address_type("listen"),
        metavar="ADDR",
        help="address to serve on (default 127.0.0.1:7443; port 0 picks a free port)",
    )
    p.add_argument(
        "--db",
        metavar="PATH|URL",
        help="SQLite file (default STATE_DIR/coordinator.db; STATE_DIR is "
        "$CPUCOMPAT_STATE_DIR, /var/lib/cpucompat as root, else ~/.local/state/cpucompat), or "
        "a PostgreSQL URL postgresql://USER@HOST[:PORT]/DB (needs cpucompat[postgres]; give "
        "the password in ~/.pgpass or PGPASSWORD rather than in the URL)",
    )
    p.add_argument(
        "--allow-replayed",
        action="store_true",
        help="accept reports replayed from dumps (rehearsals); they are marked in listings",
    )
    p.add_argument(
        "--admin",
        action="append",
        default=[],
        metavar="NAME",
        help="certificate CN or DNS SAN allowed to query and administer under mutual TLS "
        "(repeatable)",
    )
    p.add_argument(
        "--require-admission",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="accept reports only into clusters the host was admitted to with `cpucompat "
        "cluster admit` (default: on under mutual TLS, off otherwise)",
    )
    p.add_argument(
        "--insecure", action="store_true", help="allow listening beyond loopback without TLS"
    )
    p.add_argument(
        "--max-message-bytes",
        type=number_in(64 * 1024, 2**31 - 1, integer=True),
        default=4 * 1024 * 1024,
        metavar="N",
        help="refuse requests larger than N bytes, 65536-2147483647 (default 4 MiB)",
    )
    p.add_argument(
        "--workers",
        type=number_in(1, 100_000, integer=True),
        default=1024,
        metavar="N",
        help="server threads (default 1024); every agent's policy watch holds one, and 32 stay "
        "reserved for reports and queries",
    )
    from cpucompat.coordinator.limits import add_limit_options

    add_limit_options(p)
    add_tls_options(p, "coordinator")
    add_metrics_option(p, 9464)
    add_config_options(p)  # last: every option above becomes a key and a variable
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    args = resolve_config(args)
    if args.print_config:
        return print_config(args)
    from cpucompat.coordinator.limits import limits_from_args
    from cpucompat.coordinator.server import Coordinator, CoordinatorConfig
    from cpucompat.coordinator.store import StoreError

    logging.basicConfig(
        level=logging.WARNING,
        format="%(asctime)s cpucompat coordinator: %(message)s",
        stream=sys.stderr,
    )
    from cpucompat.coordinator.storage import is_postgres

    db: str | Path
    if args.db and is_postgres(args.db):
        db = args.db  # a URL: a Path would fold its "//"
    else:
        db = Path(args.db) if args.db else default_state_dir() / "coordinator.db"
    try:
        limits = limits_from_args(args)
    except ValueError as exc:
        raise CliError(str(exc)) from None
    config = CoordinatorConfig(
        db_path=db,
        listen=args.listen,
        tls=tls_files(args),
        admins=tuple(args.admin),
        allow_replayed=args.allow_replayed,
        insecure=args.insecure,
        max_message_bytes=args.max_message_bytes,
        workers=max(args.workers, 40),
        limits=limits,
        create_db_folder=not args.db,  # a given --db must name an existing folder
        require_admission=args.require_admission,
        metrics_listen=args.metrics_listen,
    )
    if args.admin and not args.tls_ca:
        raise CliError(
            "--admin needs mutual TLS: give --tls-cert, --tls-key and --tls-ca (without client "
            "certificates there is no name to check, and everyone on the socket is trusted)"
        )
    if args.tls_ca and not args.admin:
        print(
            "cpucompat coordinator: warning: mutual TLS without --admin: queries will be refused",
            file=sys.stderr,
        )
    try:
        coordinator = Coordinator(config)
    except StoreError as exc:
        raise CliError(str(exc)) from None
    if config.admission_required and not coordinator.admissions.all():
        print(
            "cpucompat coordinator: admission required and no host admitted yet: reports are "
            "refused until `cpucompat cluster admit CLUSTER HOST`",
            file=sys.stderr,
        )
    on_reload_signal(coordinator.request_reload)
    on_stop_signal(coordinator.request_stop)  # before the ready line: a SIGTERM after it is clean
    try:
        coordinator.run()
    except InputError:
        raise  # already one line naming what to change (the metrics address)
    except (ValueError, OSError, RuntimeError) as exc:
        raise CliError(listen_error(args.listen, exc)) from None
    return EXIT_OK
