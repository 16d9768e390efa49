"""Sync and asyncio signing of Binance, Bybit and OKX requests through a real custos."""
from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac

import pytest

from conftest import (BINANCE_API_KEY, BYBIT_API_KEY, BYBIT_SECRET, OKX_API_KEY, OKX_SECRET, RAW_SECRET,
                      closed_port_address, python_kwargs)
from custos_client import AsyncClient, Client, Connection, CustosError, InvalidRequest, Refused, SignedRequest

# Binance's documented signature of its POST /api/v3/order example.
BINANCE_DOC_SIGNATURE = "c8db56825ae71d6d79447849e617115f4a920fa2acdcab2b053c4b2838bd6b71"
OKX_DOC_TIMESTAMP = "2020-12-08T09:08:57.715Z"


def as_typescript(s: SignedRequest) -> dict:
    return {
        "headers": s.headers, "params": [list(p) for p in s.params], "query": s.query, "body": s.body.decode("utf-8"),
        "signature": s.signature, "timestamp": s.timestamp, "keyVersion": s.key_version, "apiKeyId": s.api_key_id,
        "endpointClass": s.endpoint_class,
    }


def documented(name: str, inp: dict, s: SignedRequest) -> None:
    """The signature each exchange's documentation defines, computed here from the secret."""
    body = inp.get("body", "")
    if name == "binance-order":
        assert s.signature == BINANCE_DOC_SIGNATURE
        assert s.query == f"{inp['query']}&recvWindow=5000&timestamp=1499827319559&signature={BINANCE_DOC_SIGNATURE}"
        assert s.headers == {"X-MBX-APIKEY": BINANCE_API_KEY}
    elif name.startswith("bybit"):
        # Bybit v5: HMAC-SHA256(timestamp + api_key + recv_window + (queryString | body)), hex.
        text = f"1658384314791{BYBIT_API_KEY}5000{inp.get('query', '') or body}"
        assert s.signature == hmac.new(BYBIT_SECRET, text.encode(), hashlib.sha256).hexdigest()
        assert s.headers["X-BAPI-SIGN"] == s.signature and s.headers["X-BAPI-TIMESTAMP"] == "1658384314791"
    elif name.startswith("okx"):
        # OKX v5: base64(HMAC-SHA256(ISO timestamp + METHOD + requestPath[?query] + body)).
        query = f"?{inp['query']}" if inp.get("query") else ""
        text = f"{OKX_DOC_TIMESTAMP}{inp['method']}{inp['path']}{query}{body}"
        assert s.signature == base64.b64encode(hmac.new(OKX_SECRET, text.encode(), hashlib.sha256).digest()).decode()
        assert s.headers["OK-ACCESS-KEY"] == OKX_API_KEY and s.headers["OK-ACCESS-TIMESTAMP"] == OKX_DOC_TIMESTAMP
    else:
        raise AssertionError(f"no documented rule for {name}")


def sign_case_sync(client: Client, inp: dict) -> SignedRequest:
    return client.sign_exchange_request(inp["keyId"], inp["method"], inp["path"], inp.get("query"), inp.get("body"), **python_kwargs(inp))


def test_sync_client_signs_like_the_typescript_client_and_the_docs(custos, data_dir):
    assert len(custos["cases"]) == 5
    with Client.from_data_dir(data_dir) as client:
        for case in custos["cases"]:
            signed = sign_case_sync(client, case["input"])
            assert as_typescript(signed) == case["typescript"], case["name"]
            documented(case["name"], case["input"], signed)


def test_async_client_signs_like_the_typescript_client_and_the_docs(custos, data_dir):
    async def run() -> list[SignedRequest]:
        async with AsyncClient.from_data_dir(data_dir) as client:
            return await asyncio.gather(*(
                client.sign_exchange_request(c["input"]["keyId"], c["input"]["method"], c["input"]["path"], c["input"].get("query"),
                                             c["input"].get("body"), **python_kwargs(c["input"]))
                for c in custos["cases"]
            ))

    for case, signed in zip(custos["cases"], asyncio.run(run()), strict=True):
        assert as_typescript(signed) == case["typescript"], case["name"]
        documented(case["name"], case["input"], signed)


WITHDRAWAL = ("POST", "/sapi/v1/capital/withdraw/apply", "coin=BTC&address=bc1qexample&amount=1")


def assert_withdrawal_refusal(e: Refused) -> None:
    assert (e.code, e.reason, e.rule) == ("PERMISSION_DENIED", "POLICY_DENIED", "class:withdraw")
    assert e.request_id != ""
    assert not e.retryable


def test_a_withdrawal_is_refused_with_reason_rule_and_request_id(keys, data_dir):
    with Client.from_data_dir(data_dir) as client:
        with pytest.raises(Refused) as sync_refusal:
            client.sign_exchange_request(keys["binance"], *WITHDRAWAL)
    assert_withdrawal_refusal(sync_refusal.value)

    async def run() -> Refused:
        async with AsyncClient.from_data_dir(data_dir) as client:
            with pytest.raises(Refused) as refusal:
                await client.sign_exchange_request(keys["binance"], *WITHDRAWAL)
            return refusal.value

    async_refusal = asyncio.run(run())
    assert_withdrawal_refusal(async_refusal)
    assert async_refusal.request_id != sync_refusal.value.request_id


def test_errors_are_typed_never_bare_grpc_errors(keys, data_dir):
    with Client.from_data_dir(data_dir) as client:
        with pytest.raises(Refused) as missing:
            client.sign_exchange_request("no-such-key", "GET", "/api/v3/openOrders", "symbol=BTCUSDT")
        assert (missing.value.code, missing.value.reason) == ("NOT_FOUND", "KEY_NOT_FOUND")
        # The strict parser refuses a repeated parameter name: the exchange and custos could read different values.
        with pytest.raises(InvalidRequest) as repeated:
            client.sign_exchange_request(keys["binance"], "POST", "/api/v3/order", "symbol=LTCBTC&symbol=BTCUSDT&side=BUY&type=MARKET&quantity=1")
        assert repeated.value.code == "INVALID_ARGUMENT"
        assert isinstance(repeated.value, CustosError)


def test_raw_sign_and_websocket_auth(keys, data_dir):
    with Client.from_data_dir(data_dir) as client:
        raw = client.sign(keys["raw"], b"payload")
        assert raw.signature == hmac.new(RAW_SECRET, b"payload", hashlib.sha256).digest()
        assert client.sign(keys["raw"], b"payload", encoding="hex").text == raw.signature.hex()
        # Bybit's WebSocket auth: hex HMAC-SHA256 of "GET/realtime" + expires (ms).
        auth = client.sign_websocket_auth(keys["bybit"])
        assert auth.signature == hmac.new(BYBIT_SECRET, f"GET/realtime{auth.timestamp}".encode(), hashlib.sha256).hexdigest()
        assert auth.api_key_id == BYBIT_API_KEY


def test_an_unavailable_address_fails_over_to_the_next(custos, data_dir):
    conn = Connection.from_data_dir(data_dir)
    with_dead_first = Connection(addresses=[closed_port_address(), *conn.addresses], ca_path=conn.ca_path,
                                 cert_path=conn.cert_path, key_path=conn.key_path, server_name=conn.server_name)
    case = custos["cases"][0]
    with Client(with_dead_first) as client:
        assert as_typescript(sign_case_sync(client, case["input"])) == case["typescript"]

    async def run() -> SignedRequest:
        async with AsyncClient(with_dead_first) as client:
            inp = case["input"]
            return await client.sign_exchange_request(inp["keyId"], inp["method"], inp["path"], inp["query"], **python_kwargs(inp))

    assert as_typescript(asyncio.run(run())) == case["typescript"]
