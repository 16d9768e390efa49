"""SignStream: 10,000 exchange requests over one stream, every signature verified here."""
from __future__ import annotations

import asyncio
import hashlib
import hmac
import time

import pytest

from conftest import BINANCE_SECRET
from custos_client import AsyncClient, Refused

COUNT = 10_000


def binance_signature_ok(query: str, signature: str) -> bool:
    """Binance: HMAC-SHA256 hex over the total parameters (here the query before &signature=)."""
    signed = query[: query.rindex("&signature=")]
    return hmac.compare_digest(hmac.new(BINANCE_SECRET, signed.encode(), hashlib.sha256).hexdigest(), signature)


def test_ten_thousand_signs_over_one_stream_all_verified(keys, data_dir):
    async def run() -> list:
        async with AsyncClient.from_data_dir(data_dir) as client:
            async with client.sign_stream(max_in_flight=64) as stream:
                async def one(i: int):
                    query = f"symbol=BTCUSDT&side=BUY&type=LIMIT&timeInForce=GTC&quantity=0.01&price={10_000 + i}"
                    return await stream.sign_exchange_request(keys["binance"], "POST", "/fapi/v1/order", query)

                return await asyncio.wait_for(asyncio.gather(*(one(i) for i in range(COUNT))), timeout=180)

    started = time.monotonic()
    results = asyncio.run(run())
    assert len(results) == COUNT
    for i, signed in enumerate(results):
        assert f"&price={10_000 + i}&" in signed.query, f"answer {i} belongs to request {i}"
        assert binance_signature_ok(signed.query, signed.signature), f"signature {i}"
    print(f"{COUNT} stream signs in {time.monotonic() - started:.1f} s")


def test_a_denial_fails_its_own_call_and_the_stream_stays_usable(keys, data_dir):
    async def run() -> None:
        async with AsyncClient.from_data_dir(data_dir) as client:
            async with client.sign_stream() as stream:
                with pytest.raises(Refused) as refusal:
                    await stream.sign_exchange_request(keys["binance"], "POST", "/sapi/v1/capital/withdraw/apply", "coin=BTC&address=x&amount=1")
                assert (refusal.value.code, refusal.value.reason, refusal.value.rule) == ("PERMISSION_DENIED", "POLICY_DENIED", "class:withdraw")
                signed = await stream.sign_exchange_request(keys["binance"], "GET", "/fapi/v1/openOrders", "symbol=BTCUSDT")
                assert signed.endpoint_class == "read" and binance_signature_ok(signed.query, signed.signature)
                assert not stream.broken

    asyncio.run(run())
