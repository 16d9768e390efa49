"""CustosAuth (requests) and CustosAiohttpAuth against a local stand-in Binance that checks the
signature as Binance documents it: HMAC-SHA256 hex of totalParams = query string + request
body (no separator), the signature excluded, the API key in X-MBX-APIKEY."""
from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Iterator
from urllib.parse import urlsplit

import aiohttp
import pytest
import requests

from conftest import BINANCE_API_KEY, BINANCE_SECRET
from custos_client import AsyncClient, Client, Refused
from custos_client.aiohttp import CustosAiohttpAuth
from custos_client.requests import CustosAuth

SIGNATURE = re.compile(r"(^|&)signature=([0-9a-f]{64})$")


class StandInBinance(BaseHTTPRequestHandler):
    """Answers 200 with what it verified, or 401 with Binance's -1022 (invalid signature)."""

    received: list[dict] = []

    def _handle(self) -> None:
        url = urlsplit(self.path)
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode("ascii")
        carrier = "body" if SIGNATURE.search(body) else "query"
        match = SIGNATURE.search(body if carrier == "body" else url.query)
        total = url.query + body
        ok = False
        if match:
            unsigned = (url.query + SIGNATURE.sub("", body)) if carrier == "body" else (SIGNATURE.sub("", url.query) + body)
            expected = hmac.new(BINANCE_SECRET, unsigned.encode(), hashlib.sha256).hexdigest()
            ok = hmac.compare_digest(expected, match.group(2)) and self.headers.get("X-MBX-APIKEY") == BINANCE_API_KEY and "timestamp=" in total
        self.received.append({"method": self.command, "path": url.path, "query": url.query, "body": body, "ok": ok})
        answer = json.dumps({"verified": True, "path": url.path} if ok else {"code": -1022, "msg": "Signature for this request is not valid."})
        self.send_response(200 if ok else 401)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer.encode())

    do_GET = do_POST = do_DELETE = _handle

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture()
def exchange() -> Iterator[tuple[str, list[dict]]]:
    StandInBinance.received = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), StandInBinance)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", StandInBinance.received
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


ORDER = [("symbol", "LTCBTC"), ("side", "BUY"), ("type", "LIMIT"), ("timeInForce", "GTC"), ("quantity", "1"), ("price", "0.1")]


def test_requests_signed_by_custos_are_accepted_by_the_stand_in(exchange, keys, data_dir):
    base, received = exchange
    with Client.from_data_dir(data_dir) as client:
        auth = CustosAuth(client, keys["binance"], recv_window_ms=5000)
        in_query = requests.post(f"{base}/api/v3/order", params=ORDER, auth=auth, timeout=10)
        assert in_query.status_code == 200, in_query.text
        in_body = requests.post(f"{base}/api/v3/order", data=ORDER, auth=auth, timeout=10)
        assert in_body.status_code == 200, in_body.text
        reading = requests.get(f"{base}/api/v3/openOrders", params={"symbol": "LTCBTC"}, auth=auth, timeout=10)
        assert reading.status_code == 200, reading.text
        with pytest.raises(Refused) as refusal:
            requests.post(f"{base}/sapi/v1/capital/withdraw/apply", params={"coin": "BTC", "address": "bc1qexample", "amount": "1"}, auth=auth, timeout=10)
    assert refusal.value.rule == "class:withdraw"
    assert [(r["path"], r["ok"]) for r in received] == [("/api/v3/order", True), ("/api/v3/order", True), ("/api/v3/openOrders", True)]
    assert "signature=" in received[1]["body"] and "signature=" not in received[1]["query"]


def test_the_stand_in_rejects_a_wrong_signature(exchange):
    """The stand-in can fail: a request signed with another secret gets Binance's -1022."""
    base, received = exchange
    query = "symbol=LTCBTC&side=BUY&type=MARKET&quantity=1&timestamp=1499827319559"
    forged = hmac.new(b"another-secret", query.encode(), hashlib.sha256).hexdigest()
    r = requests.post(f"{base}/api/v3/order?{query}&signature={forged}", headers={"X-MBX-APIKEY": BINANCE_API_KEY}, timeout=10)
    assert (r.status_code, r.json()["code"], received[0]["ok"]) == (401, -1022, False)


def test_aiohttp_session_signed_by_custos_is_accepted_by_the_stand_in(exchange, keys, data_dir):
    base, received = exchange

    async def run() -> list[int]:
        async with AsyncClient.from_data_dir(data_dir) as client:
            auth = CustosAiohttpAuth(client, keys["binance"])
            async with aiohttp.ClientSession(request_class=auth.request_class) as session:
                statuses = []
                async with session.post(f"{base}/api/v3/order", params=ORDER) as r:
                    statuses.append(r.status)
                async with session.post(f"{base}/api/v3/order", data="&".join(f"{k}={v}" for k, v in ORDER),
                                        headers={"Content-Type": "application/x-www-form-urlencoded"}) as r:
                    statuses.append(r.status)
                with pytest.raises(Refused):
                    await session.post(f"{base}/sapi/v1/capital/withdraw/apply", params={"coin": "BTC", "address": "bc1qexample", "amount": "1"})
                return statuses

    assert asyncio.run(run()) == [200, 200]
    assert [(r["path"], r["ok"]) for r in received] == [("/api/v3/order", True), ("/api/v3/order", True)]
