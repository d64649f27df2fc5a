#!/usr/bin/env python3
"""Generate the Python code of the cpucompat.v1 wire contract.

Runs the pinned generator (grpcio-tools, see pyproject's dev extra) as

    protoc -I protos --python_out=OUT --pyi_out=OUT --grpc_python_out=OUT \
        protos/cpucompat/v1/*.proto

so generated modules import each other as ``from cpucompat.v1 import x_pb2``.
OUT defaults to ``protos/`` (the committed files next to the .proto files);
``--out DIR`` writes elsewhere, which is how tests/integration/test_protos.py checks that
the committed files are up to date. ``--descriptor-set FILE`` also writes a
FileDescriptorSet with source info (comments), for linting.

Usage: python protos/generate.py [--out DIR] [--descriptor-set FILE]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

PROTO_ROOT = Path(__file__).resolve().parent
"""The include root: proto paths below it are the import paths (cpucompat/v1/...)."""

PACKAGE_DIR = PROTO_ROOT / "cpucompat" / "v1"
PINNED_GRPC_TOOLS = "1.85.1"
GENERATED_SUFFIXES = ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py")


def proto_files() -> list[Path]:
    """The contract's .proto files, sorted."""
    return sorted(PACKAGE_DIR.glob("*.proto"))


def generated_files(out_dir: Path) -> list[Path]:
    """The generated files present below ``out_dir``, sorted."""
    pkg = out_dir / "cpucompat" / "v1"
    return sorted(p for p in pkg.glob("*") if p.name.endswith(GENERATED_SUFFIXES))


def _well_known_include() -> str:
    """grpc_tools' copy of google/protobuf/*.proto (Timestamp, Duration, descriptor)."""
    from importlib.resources import files

    return str(files("grpc_tools") / "_proto")


def grpc_tools_version() -> str:
    from grpc_tools import grpc_version  # type: ignore[import-untyped]

    return str(grpc_version.VERSION)


def run_protoc(extra_args: list[str]) -> None:
    """Run the bundled protoc over every contract file with ``extra_args``."""
    from grpc_tools import protoc  # type: ignore[import-untyped]

    args = [
        "grpc_tools.protoc",
        f"-I{PROTO_ROOT}",
        f"-I{_well_known_include()}",
        *extra_args,
        *(str(p) for p in proto_files()),
    ]
    status = protoc.main(args)
    if status != 0:
        raise SystemExit(f"protoc failed with status {status}: {' '.join(args)}")


def generate(out_dir: Path) -> list[Path]:
    """Write *_pb2.py, *_pb2.pyi and *_pb2_grpc.py below ``out_dir``; return them."""
    out_dir.mkdir(parents=True, exist_ok=True)
    run_protoc([f"--python_out={out_dir}", f"--pyi_out={out_dir}", f"--grpc_python_out={out_dir}"])
    return generated_files(out_dir)


def write_descriptor_set(path: Path) -> None:
    """Write a FileDescriptorSet of the contract files with their comments."""
    path.parent.mkdir(parents=True, exist_ok=True)
    run_protoc(["--include_source_info", f"--descriptor_set_out={path}"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--out",
        type=Path,
        default=PROTO_ROOT,
        help="output root (default: protos/, next to the .proto files)",
    )
    parser.add_argument(
        "--descriptor-set",
        type=Path,
        help="also write a FileDescriptorSet with source info to this file",
    )
    args = parser.parse_args(argv)

    version = grpc_tools_version()
    if version != PINNED_GRPC_TOOLS:
        print(
            f"warning: grpcio-tools {version} is not the pinned {PINNED_GRPC_TOOLS}; "
            f"output may differ from the committed files "
            f"(pip install grpcio-tools=={PINNED_GRPC_TOOLS})",
            file=sys.stderr,
        )
    written = generate(args.out)
    if args.descriptor_set is not None:
        write_descriptor_set(args.descriptor_set)
    for path in written:
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
