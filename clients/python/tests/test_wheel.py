"""The package builds into a wheel (stubs generated from proto/) and installs offline into a
fresh virtualenv that takes grpcio and protobuf from the system (Debian's packages)."""
from __future__ import annotations

import glob
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BINANCE_DOC_SIGNATURE = "c8db56825ae71d6d79447849e617115f4a920fa2acdcab2b053c4b2838bd6b71"

SIGN_ONCE = """
import sys, custos_client
from custos_client import Client
assert custos_client.__file__.startswith(sys.prefix), custos_client.__file__
for name in ("custos", "custos_pb2"):
    try:
        __import__(name)
    except ImportError:
        pass
    else:
        raise SystemExit(f"the wheel installed a top-level {name}")
with Client.from_data_dir(sys.argv[1]) as c:
    s = c.sign_exchange_request(sys.argv[2], "POST", "/api/v3/order", "symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC&quantity=1&price=0.1",
                                timestamp_ms=1499827319559, recv_window_ms=5000)
print(s.signature)
"""


def run(*args: str, cwd: Path) -> str:
    r = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, f"{' '.join(args)}\n{r.stdout}\n{r.stderr}"
    return r.stdout


def test_wheel_builds_installs_into_a_fresh_venv_and_signs(tmp_path, keys, data_dir):
    dist = tmp_path / "dist"
    run(sys.executable, "-m", "pip", "wheel", "--no-build-isolation", "--no-deps", "--no-index", "-w", str(dist), str(ROOT), cwd=tmp_path)
    [wheel] = glob.glob(str(dist / "custos_client-*.whl"))
    venv = tmp_path / "venv"
    run(sys.executable, "-m", "venv", "--system-site-packages", str(venv), cwd=tmp_path)
    python = str(venv / "bin" / "python")
    run(python, "-m", "pip", "install", "--no-index", "--no-deps", wheel, cwd=tmp_path)
    listed = run(python, "-m", "pip", "show", "-f", "custos-client", cwd=tmp_path)
    assert "custos_client/_gen/signer_pb2_grpc.py" in listed
    env_cwd = tmp_path  # not the source tree: the installed package is imported
    out = subprocess.run([python, "-c", SIGN_ONCE, data_dir, keys["binance"]], cwd=env_cwd, capture_output=True, text=True, timeout=60,
                         env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"})
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == BINANCE_DOC_SIGNATURE
