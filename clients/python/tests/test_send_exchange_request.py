"""send_exchange_request: custos signs and sends to the stand-in Binance (HTTPS, in the node test),
sync, asyncio and in a SignStream; an order is never sent twice, whatever fails."""
from __future__ import annotations

import asyncio
import time

import pytest

from conftest import BINANCE_API_KEY, StandIn, client_order_id, closed_port_address
from custos_client import (AsyncClient, Client, Connection, CustosError, ExchangeReply, Refused,
                           SendOutcomeUnknown, Unavailable)

PATH = "/fapi/v1/order"


def order(cid: str) -> str:
    return f"symbol=BTCUSDT&side=BUY&type=MARKET&quantity=0.01&newClientOrderId={cid}"


def connection(data_dir: str, *addresses: str) -> Connection:
    """The data dir's connection with these addresses instead (its own address as "live")."""
    conn = Connection.from_data_dir(data_dir)
    resolved = [conn.addresses[0] if a == "live" else a for a in addresses]
    return Connection(addresses=resolved, ca_path=conn.ca_path, cert_path=conn.cert_path, key_path=conn.key_path,
                      server_name=conn.server_name)


def assert_placed_once(reply: ExchangeReply, cid: str, stand_in: StandIn) -> None:
    assert reply.status == 200
    answer = reply.json()
    assert (answer["symbol"], answer["clientOrderId"], answer["status"]) == ("BTCUSDT", cid, "NEW")
    assert isinstance(answer["orderId"], int)
    assert (reply.key_version, reply.endpoint_class) == (1, "trade")
    assert reply.round_trip_us > 0
    assert reply.header("Content-Type") == "application/json"
    seen = stand_in.orders(cid)
    assert len(seen) == 1 and seen[0]["status"] == 200, seen


def assert_may_have_been_placed(e: SendOutcomeUnknown, code: str, reason: str) -> None:
    assert (e.code, e.reason, e.retryable) == (code, reason, False)
    assert not isinstance(e, Unavailable), "a handler retrying Unavailable must not resend the order"
    assert "may have been placed" in str(e) and "check the exchange" in str(e)


def test_sync_send_places_one_binance_order(keys, data_dir, stand_in):
    cid = client_order_id()
    with Client.from_data_dir(data_dir) as client:
        reply = client.send_exchange_request(keys["binance"], "POST", PATH, order(cid))
    assert_placed_once(reply, cid, stand_in)


def test_async_send_places_one_binance_order(keys, data_dir, stand_in):
    cid = client_order_id()

    async def run() -> ExchangeReply:
        async with AsyncClient.from_data_dir(data_dir) as client:
            return await client.send_exchange_request(keys["binance"], "POST", PATH, order(cid))

    assert_placed_once(asyncio.run(run()), cid, stand_in)


def test_stream_send_places_one_binance_order_next_to_signs(keys, data_dir, stand_in):
    cid = client_order_id()

    async def run() -> ExchangeReply:
        async with AsyncClient.from_data_dir(data_dir) as client:
            async with client.sign_stream() as stream:
                reply, signed = await asyncio.gather(
                    stream.send_exchange_request(keys["binance"], "POST", PATH, order(cid)),
                    stream.sign_exchange_request(keys["binance"], "GET", "/fapi/v2/balance"),
                )
                assert "signature=" in signed.query
                return reply

    assert_placed_once(asyncio.run(run()), cid, stand_in)


def test_an_egress_only_key_refuses_signing_but_sends(keys, data_dir, stand_in):
    cid = client_order_id()
    with Client.from_data_dir(data_dir) as client:
        with pytest.raises(Refused) as refusal:
            client.sign_exchange_request(keys["binanceEgressOnly"], "POST", PATH, order(cid))
        assert (refusal.value.reason, refusal.value.rule) == ("POLICY_DENIED", "egress-only")
        assert stand_in.orders(cid) == []
        reply = client.send_exchange_request(keys["binanceEgressOnly"], "POST", PATH, order(cid))
    assert_placed_once(reply, cid, stand_in)
    assert BINANCE_API_KEY not in reply.body.decode() and "signature" not in reply.body.decode()


def test_a_policy_refusal_sends_nothing_and_is_raised_as_refused(keys, data_dir, stand_in):
    with Client.from_data_dir(data_dir) as client:
        with pytest.raises(Refused) as refusal:
            client.send_exchange_request(keys["binance"], "POST", "/sapi/v1/capital/withdraw/apply", "coin=BTC&address=x&amount=1")
    assert (refusal.value.reason, refusal.value.rule) == ("POLICY_DENIED", "class:withdraw")
    assert not [x for x in stand_in.received() if "/withdraw/" in x["target"]]


def test_a_hung_exchange_raises_may_have_been_placed_and_no_second_address_resends(keys, data_dir, stand_in):
    # Two addresses, both live: the old failover would have sent the order again to the second.
    twice = connection(data_dir, "live", "live")
    sync_cid, async_cid = client_order_id(), client_order_id()

    async def run_async() -> SendOutcomeUnknown:
        async with AsyncClient(twice) as client:
            with pytest.raises(SendOutcomeUnknown) as e:
                await client.send_exchange_request(keys["binance"], "POST", PATH, order(async_cid))
            return e.value

    with stand_in.hanging():
        with Client(twice) as client, pytest.raises(SendOutcomeUnknown) as e:
            client.send_exchange_request(keys["binance"], "POST", PATH, order(sync_cid))
        async_error = asyncio.run(run_async())
    for err in (e.value, async_error):
        assert_may_have_been_placed(err, "UNAVAILABLE", "EXCHANGE_UNAVAILABLE")
    assert len(stand_in.orders(sync_cid)) == 1
    assert len(stand_in.orders(async_cid)) == 1


def test_a_deadline_before_custos_answers_is_may_have_been_placed_not_retried(keys, data_dir, stand_in):
    # custos waits 1 s for the exchange; the client's deadline ends first, with the order at the exchange.
    cid = client_order_id()
    with stand_in.hanging(), Client(connection(data_dir, "live", "live"), timeout=0.3) as client:
        with pytest.raises(SendOutcomeUnknown) as e:
            client.send_exchange_request(keys["binance"], "POST", PATH, order(cid))
    assert_may_have_been_placed(e.value, "DEADLINE_EXCEEDED", "DEADLINE_EXCEEDED")
    assert len(stand_in.orders(cid)) == 1


def test_a_stream_send_refused_by_a_hung_exchange_or_cut_by_a_break_is_never_resent(keys, data_dir, stand_in):
    refused_cid, broken_cid, unsent_cid = client_order_id(), client_order_id(), client_order_id()

    async def run() -> tuple[SendOutcomeUnknown, SendOutcomeUnknown]:
        async with AsyncClient.from_data_dir(data_dir) as client:
            async with client.sign_stream() as stream:
                with pytest.raises(SendOutcomeUnknown) as denied:
                    await stream.send_exchange_request(keys["binance"], "POST", PATH, order(refused_cid))
                assert not stream.broken
            stream = client.sign_stream()
            pending = asyncio.ensure_future(stream.send_exchange_request(keys["binance"], "POST", PATH, order(broken_cid)))
            # Break the stream once the exchange has the order (custos is still waiting for its answer).
            deadline = time.monotonic() + 10
            while not await asyncio.to_thread(stand_in.orders, broken_cid):
                assert time.monotonic() < deadline, "the stand-in never received the streamed order"
                await asyncio.sleep(0.02)
            stream._call.cancel()  # the stream's gRPC call, as a dropped connection ends it
            with pytest.raises(SendOutcomeUnknown) as broken:
                await asyncio.wait_for(pending, 10)
            assert stream.broken
            with pytest.raises(CustosError) as refused:  # a new call on the broken stream is not sent
                await stream.send_exchange_request(keys["binance"], "POST", PATH, order(unsent_cid))
            assert type(refused.value) is CustosError and refused.value.code == "CANCELLED"
            return denied.value, broken.value

    with stand_in.hanging():
        denied, broken = asyncio.run(run())
    assert_may_have_been_placed(denied, "UNAVAILABLE", "EXCHANGE_UNAVAILABLE")
    assert broken.retryable is False and "sign stream broke" in str(broken) and "may have been placed" in str(broken)
    assert len(stand_in.orders(refused_cid)) == 1
    assert len(stand_in.orders(broken_cid)) == 1
    assert stand_in.orders(unsent_cid) == []


def test_a_send_fails_over_only_past_an_address_it_never_reached(keys, data_dir, stand_in):
    sync_cid, async_cid, lost_cid = client_order_id(), client_order_id(), client_order_id()
    dead_first = connection(data_dir, closed_port_address(), "live")
    with Client(dead_first) as client:
        assert_placed_once(client.send_exchange_request(keys["binance"], "POST", PATH, order(sync_cid)), sync_cid, stand_in)

    async def run() -> ExchangeReply:
        async with AsyncClient(dead_first) as client:
            return await client.send_exchange_request(keys["binance"], "POST", PATH, order(async_cid))

    assert_placed_once(asyncio.run(run()), async_cid, stand_in)
    # No address reachable: nothing was sent, so Unavailable (retryable) and no order.
    with Client(connection(data_dir, closed_port_address(), closed_port_address())) as client:
        with pytest.raises(Unavailable) as e:
            client.send_exchange_request(keys["binance"], "POST", PATH, order(lost_cid))
    assert (type(e.value), e.value.reason, e.value.retryable) == (Unavailable, "NOT_CONNECTED", True)
    assert stand_in.orders(lost_cid) == []
