"""Generates custos_client/_gen from the repository's proto/ with Debian's protoc.

Run by the package build (setup.py) and by the tests from a checkout. Only Signer is
generated (trading engines call nothing else), into a private subpackage whose imports are
made relative, so nothing named ``custos`` or ``grpc`` is added at top level.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
GEN = HERE / "custos_client" / "_gen"
PLUGIN = os.environ.get("CUSTOS_GRPC_PYTHON_PLUGIN", "/usr/bin/grpc_python_plugin")


def proto_dir() -> Path:
    """The repository's proto/ (``$CUSTOS_PROTO_DIR`` overrides, e.g. for a copied source tree)."""
    return Path(os.environ.get("CUSTOS_PROTO_DIR", HERE.parent.parent / "proto")).resolve()


def _sources() -> list[Path]:
    return [proto_dir() / "custos" / "v1" / "signer.proto", HERE / "protos" / "custos_client_error_details.proto"]


def is_fresh() -> bool:
    """True when every generated module is newer than the protos it comes from."""
    outputs = [GEN / n for n in ("signer_pb2.py", "signer_pb2_grpc.py", "error_details_pb2.py", "__init__.py")]
    if not all(p.exists() for p in outputs):
        return False
    newest_source = max(p.stat().st_mtime for p in _sources() + [Path(__file__)])
    return min(p.stat().st_mtime for p in outputs) >= newest_source


def generate() -> None:
    """Regenerates custos_client/_gen (fails loudly when protoc or the gRPC plugin is missing)."""
    protos = proto_dir()
    for tool in ("protoc", PLUGIN):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} missing: apt-get install protobuf-compiler protobuf-compiler-grpc")
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            ["protoc", f"-I{protos}", f"--python_out={tmp}", f"--grpc_python_out={tmp}",
             f"--plugin=protoc-gen-grpc_python={PLUGIN}", "custos/v1/signer.proto"],
            check=True,
        )
        # any.proto comes from proto/ (vendored there); the protobuf runtime ships its module.
        subprocess.run(
            ["protoc", f"-I{HERE / 'protos'}", f"-I{protos}", f"--python_out={tmp}", "custos_client_error_details.proto"],
            check=True,
        )
        staging = Path(tmp) / "_gen"
        staging.mkdir()
        (staging / "__init__.py").write_text('"""Generated from proto/ by build_stubs.py; never edit."""\n')
        shutil.copy(Path(tmp) / "custos" / "v1" / "signer_pb2.py", staging / "signer_pb2.py")
        grpc_module = (Path(tmp) / "custos" / "v1" / "signer_pb2_grpc.py").read_text()
        relative, count = re.subn(r"^from custos\.v1 import signer_pb2 as", "from . import signer_pb2 as", grpc_module, flags=re.M)
        if count != 1:
            raise SystemExit("unexpected import in the generated signer_pb2_grpc.py")
        (staging / "signer_pb2_grpc.py").write_text(relative)
        shutil.copy(Path(tmp) / "custos_client_error_details_pb2.py", staging / "error_details_pb2.py")
        shutil.rmtree(GEN, ignore_errors=True)
        shutil.copytree(staging, GEN)


def ensure() -> None:
    """Generates the stubs unless they are up to date."""
    if not is_fresh():
        generate()


if __name__ == "__main__":
    generate()
    print(f"generated {GEN}")
