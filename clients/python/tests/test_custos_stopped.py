"""With custos stopped, every call raises Unavailable (retryable), sync, asyncio and stream."""
from __future__ import annotations

import asyncio

import pytest

from custos_client import AsyncClient, Client, Unavailable

pytestmark = pytest.mark.custos_stopped


def assert_unavailable(e: Unavailable) -> None:
    assert e.code == "UNAVAILABLE"
    assert e.retryable


def test_sync_calls_raise_unavailable(keys, data_dir):
    with Client.from_data_dir(data_dir, timeout=5) as client:
        with pytest.raises(Unavailable) as e:
            client.sign_exchange_request(keys["binance"], "GET", "/fapi/v1/openOrders", "symbol=BTCUSDT")
    assert_unavailable(e.value)


def test_async_and_stream_calls_raise_unavailable(keys, data_dir):
    async def run() -> tuple[Unavailable, Unavailable]:
        async with AsyncClient.from_data_dir(data_dir, timeout=5) as client:
            with pytest.raises(Unavailable) as unary:
                await client.sign_exchange_request(keys["binance"], "GET", "/fapi/v1/openOrders", "symbol=BTCUSDT")
            stream = client.sign_stream()
            with pytest.raises(Unavailable) as streamed:
                await asyncio.wait_for(stream.sign_exchange_request(keys["binance"], "GET", "/fapi/v1/openOrders", "symbol=BTCUSDT"), 30)
            assert stream.broken
            return unary.value, streamed.value

    for e in asyncio.run(run()):
        assert_unavailable(e)
