"""Fixtures: the custos that test/integration/python-client.test.ts started for this run.

The node test writes CUSTOS_PYTEST_FIXTURE: the data dir, key ids and the TypeScript client's
output for the cases both clients sign. Without it there is no custos to test against.
"""
from __future__ import annotations

import contextlib
import json
import os
import socket
import sys
import urllib.request
import uuid
from pathlib import Path
from typing import Iterator

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


class StandIn:
    """The stand-in Binance custos's egress sends to (it runs in the node test; see standInControl)."""

    def __init__(self, url: str) -> None:
        self.url = url

    def received(self) -> list[dict]:
        """Every request it received (method, target, body, the status it answered), in order."""
        with urllib.request.urlopen(f"{self.url}/received", timeout=10) as r:
            return json.load(r)

    def orders(self, client_order_id: str) -> list[dict]:
        """Every POST /fapi/v1/order it received carrying this newClientOrderId, answered or not."""
        return [x for x in self.received() if x["method"] == "POST" and x["target"].startswith("/fapi/v1/order?")
                and f"&newClientOrderId={client_order_id}&" in x["target"] + "&"]

    @contextlib.contextmanager
    def hanging(self) -> Iterator[None]:
        """The stand-in records requests but never answers them, until the block ends."""
        self._fault("hang")
        try:
            yield
        finally:
            self._fault("none")

    def _fault(self, fault: str) -> None:
        request = urllib.request.Request(f"{self.url}/fault", data=fault.encode(), method="PUT")
        with urllib.request.urlopen(request, timeout=10) as r:
            assert r.status == 204


@pytest.fixture(scope="session")
def stand_in(custos: dict) -> StandIn:
    return StandIn(custos["standIn"])


def client_order_id() -> str:
    """A fresh Binance newClientOrderId (at most 36 characters of [.A-Z:/a-z0-9_-])."""
    return f"py-{uuid.uuid4().hex[:24]}"


def closed_port_address() -> str:
    """A loopback address nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{s.getsockname()[1]}"


def python_kwargs(case_input: dict) -> dict:
    """The TypeScript case input as custos_client keyword arguments."""
    names = {"timestampMs": "timestamp_ms", "recvWindowMs": "recv_window_ms", "passphrase": "passphrase"}
    return {py: case_input[ts] for ts, py in names.items() if ts in case_input}
