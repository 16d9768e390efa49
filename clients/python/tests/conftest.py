"""Fixtures: the custos that test/integration/python-client.test.ts started for this run.

The node test writes CUSTOS_PYTEST_FIXTURE: the data dir, key ids and the TypeScript client's
output for the cases both clients sign. Without it there is no custos to test against.
"""
from __future__ import annotations

import json
import os
import socket
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
import build_stubs  # noqa: E402

build_stubs.ensure()

# Documented example secrets (Binance's docs; the unit tests' Bybit and OKX keys): the tests
# verify custos's signatures with them the way each exchange documents it.
BINANCE_SECRET = b"NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j"
BINANCE_API_KEY = "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A"
BYBIT_SECRET = b"yQ1UpD4mWb2gqz3Vv7XkRkP9tHc6sLJfN0aE"
BYBIT_API_KEY = "XUwVDQ9tZdFyqPJbE1"
OKX_SECRET = b"22582BD0CFF14C41EDBF1AB98506286D"
OKX_API_KEY = "4f1c2b3a-9d8e-4c7b-a6f5-0e1d2c3b4a59"
RAW_SECRET = b"python-raw-secret-0123456789abcdef0123456789"


@pytest.fixture(scope="session")
def custos() -> dict:
    path = os.environ.get("CUSTOS_PYTEST_FIXTURE")
    if not path:
        raise RuntimeError("CUSTOS_PYTEST_FIXTURE is not set: run node --test dist/test/integration/python-client.test.js")
    with open(path, encoding="utf-8") as f:
        return json.load(f)


@pytest.fixture(scope="session")
def data_dir(custos: dict) -> str:
    return custos["dataDir"]


@pytest.fixture(scope="session")
def keys(custos: dict) -> dict:
    return custos["keys"]


def closed_port_address() -> str:
    """A loopback address nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{s.getsockname()[1]}"


def python_kwargs(case_input: dict) -> dict:
    """The TypeScript case input as custos_client keyword arguments."""
    names = {"timestampMs": "timestamp_ms", "recvWindowMs": "recv_window_ms", "passphrase": "passphrase"}
    return {py: case_input[ts] for ts, py in names.items() if ts in case_input}
