"""The asyncio client (``grpc.aio``) and :class:`SignStream`, many signs over one stream."""
from __future__ import annotations

import asyncio
import itertools
from typing import Any, AsyncIterator, Optional

import grpc

from . import messages
from ._gen import signer_pb2 as pb
from ._gen import signer_pb2_grpc
from .connection import Connection
from .client import not_connected
from .errors import CustosError, SendOutcomeUnknown, Unavailable, error_for, from_rpc_error, from_send_rpc_error, send_error_for
from .messages import Body, ExchangeReply, Query, Signature, SignedRequest, SignedWebSocketAuth


class AsyncClient:
    """The asyncio twin of :class:`custos_client.Client` (same methods, awaited; same failover,
    and the same rule for sends: see :meth:`custos_client.Client.send_exchange_request`)."""

    def __init__(self, connection: Connection, timeout: float = 10.0, connect_timeout: float = 5.0) -> None:
        self.connection = connection
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self._stubs: list[Optional[signer_pb2_grpc.SignerStub]] = [None] * len(connection.addresses)
        self._channels: list[Optional[grpc.aio.Channel]] = [None] * len(connection.addresses)
        self._preferred = 0

    @classmethod
    def from_data_dir(cls, data_dir: str, cert_path: Optional[str] = None, key_path: Optional[str] = None, **kwargs: Any) -> "AsyncClient":
        return cls(Connection.from_data_dir(data_dir, cert_path, key_path), **kwargs)

    async def sign_exchange_request(self, key: str, method: str, path: str, query: Query = None, body: Body = None, **options: Any) -> SignedRequest:
        """See :meth:`custos_client.Client.sign_exchange_request`."""
        req = messages.exchange_request(key, method, path, query, body, **options)
        return messages.signed_request(await self._call("SignExchangeRequest", req))

    async def send_exchange_request(self, key: str, method: str, path: str, query: Query = None, body: Body = None, **options: Any) -> ExchangeReply:
        """custos signs and sends; see :meth:`custos_client.Client.send_exchange_request` (never sent
        twice: fails over only when the send never reached custos, else :class:`SendOutcomeUnknown`)."""
        req = messages.exchange_request(key, method, path, query, body, **options)
        return messages.exchange_reply(await self._call("SendExchangeRequest", req, send=True))

    async def sign_websocket_auth(self, key: str, **options: Any) -> SignedWebSocketAuth:
        return messages.signed_websocket_auth(await self._call("SignWebSocketAuth", messages.websocket_auth_request(key, **options)))

    async def sign(self, key: str, payload: bytes, version: int = 0, encoding: str = "raw") -> Signature:
        return messages.signature(await self._call("Sign", messages.sign_request(key, payload, version, encoding)))

    def sign_stream(self, max_in_flight: int = 64) -> "SignStream":
        """A new :class:`SignStream` on the preferred address (call inside the running loop)."""
        return SignStream(self._stub(self._preferred), max_in_flight)

    async def close(self) -> None:
        for channel in self._channels:
            if channel is not None:
                await channel.close()
        self._channels = [None] * len(self.connection.addresses)
        self._stubs = [None] * len(self.connection.addresses)

    async def __aenter__(self) -> "AsyncClient":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def _stub(self, index: int) -> signer_pb2_grpc.SignerStub:
        stub = self._stubs[index]
        if stub is None:
            c = self.connection
            channel = self._channels[index] = grpc.aio.secure_channel(c.addresses[index], c.credentials(), options=c.channel_options())
            stub = self._stubs[index] = signer_pb2_grpc.SignerStub(channel)
        return stub

    async def _call(self, method: str, request: Any, send: bool = False) -> Any:
        """One call, failing over across addresses. A sign goes to the next address on any
        :class:`Unavailable`. A send (``send=True``, SendExchangeRequest) follows the send rule (see
        :meth:`custos_client.Client.send_exchange_request`): issued only on a ready channel, and moved on
        only when custos refused it before signing."""
        count = len(self.connection.addresses)
        classify = from_send_rpc_error if send else from_rpc_error
        last: Optional[Unavailable] = None
        for step in range(count):
            index = (self._preferred + step) % count
            stub = self._stub(index)
            if send and not await _ready(self._channels[index], self.connect_timeout):
                last = not_connected(self.connection.addresses[index], self.connect_timeout)
                continue
            try:
                response = await getattr(stub, method)(request, timeout=self.timeout)
            except grpc.RpcError as e:
                err = classify(e)
                if isinstance(err, Unavailable):  # nothing was sent: the next address may have it
                    last = err
                    continue
                raise err from None
            self._preferred = index
            return response
        assert last is not None
        raise last


async def _ready(channel: Any, timeout: float) -> bool:
    """True once the channel is READY; False on a failed connection attempt or after ``timeout``
    (as the sync client's: a call is issued only on a ready channel)."""
    settled = (grpc.ChannelConnectivity.READY, grpc.ChannelConnectivity.TRANSIENT_FAILURE, grpc.ChannelConnectivity.SHUTDOWN)

    async def watch() -> bool:
        state = channel.get_state(try_to_connect=True)
        while state not in settled:
            await channel.wait_for_state_change(state)
            state = channel.get_state(try_to_connect=True)
        return state is grpc.ChannelConnectivity.READY

    try:
        return await asyncio.wait_for(watch(), timeout)
    except asyncio.TimeoutError:
        return False


class SignStream:
    """Many signs over one ``SignStream`` RPC: a request queue written by one task, answers
    matched to their futures by request id (they may come back out of order).

    At most ``max_in_flight`` requests are outstanding; :meth:`submit` waits for room. A denial
    fails only its own call (``Refused``, ``InvalidRequest`` …); a broken stream fails every
    pending call with ``Unavailable`` or the stream's status, and the next call raises too:
    open a new stream. A pending :meth:`send_exchange_request` is failed with
    :class:`SendOutcomeUnknown` instead (it may have been sent), never sent again.
    """

    def __init__(self, stub: signer_pb2_grpc.SignerStub, max_in_flight: int = 64) -> None:
        self._queue: asyncio.Queue[Optional[pb.SignStreamRequest]] = asyncio.Queue()
        self._pending: dict[int, asyncio.Future[pb.SignStreamResponse]] = {}
        # Request ids of pending sends: a break fails them as "may have been placed".
        self._sends: set[int] = set()
        self._room = asyncio.Semaphore(max_in_flight)
        self._ids = itertools.count(1)
        self._failure: Optional[CustosError] = None
        self._call = stub.SignStream(self._requests())
        self._reader = asyncio.ensure_future(self._read())

    @property
    def broken(self) -> bool:
        return self._failure is not None

    async def submit(self, request: Any, send: bool = False) -> "asyncio.Future[pb.SignStreamResponse]":
        """Queues an ``ExchangeRequest`` (to sign, or with ``send`` for custos to sign and send) or
        a ``SignRequest``; the future resolves with its answer."""
        await self._room.acquire()
        if self._failure is not None:
            self._room.release()
            raise self._failure
        request_id = next(self._ids)
        future: asyncio.Future[pb.SignStreamResponse] = asyncio.get_running_loop().create_future()
        future.add_done_callback(lambda _: self._room.release())
        self._pending[request_id] = future
        if send:
            self._sends.add(request_id)
            self._queue.put_nowait(pb.SignStreamRequest(request_id=request_id, send_exchange_request=request))
        elif isinstance(request, pb.ExchangeRequest):
            self._queue.put_nowait(pb.SignStreamRequest(request_id=request_id, exchange_request=request))
        else:
            self._queue.put_nowait(pb.SignStreamRequest(request_id=request_id, request=request))
        return future

    async def sign_exchange_request(self, key: str, method: str, path: str, query: Query = None, body: Body = None, **options: Any) -> SignedRequest:
        answer = await (await self.submit(messages.exchange_request(key, method, path, query, body, **options)))
        if answer.WhichOneof("result") == "exchange_response":
            return messages.signed_request(answer.exchange_response)
        raise _denial(answer)

    async def send_exchange_request(self, key: str, method: str, path: str, query: Query = None, body: Body = None, **options: Any) -> ExchangeReply:
        """custos signs and sends (see :meth:`custos_client.Client.send_exchange_request`); a failure
        after it was queued, the stream breaking included, is :class:`SendOutcomeUnknown`, never resent."""
        answer = await (await self.submit(messages.exchange_request(key, method, path, query, body, **options), send=True))
        if answer.WhichOneof("result") == "exchange_reply":
            return messages.exchange_reply(answer.exchange_reply)
        if answer.WhichOneof("result") == "denial":
            d = answer.denial
            raise send_error_for(d.code, d.reason, d.message, d.rule)
        raise SendOutcomeUnknown("INTERNAL", "INTERNAL", "unexpected answer in the sign stream")

    async def sign(self, key: str, payload: bytes, version: int = 0, encoding: str = "raw") -> Signature:
        answer = await (await self.submit(messages.sign_request(key, payload, version, encoding)))
        if answer.WhichOneof("result") == "response":
            return messages.signature(answer.response)
        raise _denial(answer)

    async def close(self) -> None:
        """Ends the stream after the queued requests; pending calls still get their answers."""
        self._queue.put_nowait(None)
        await self._reader

    async def __aenter__(self) -> "SignStream":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _requests(self) -> AsyncIterator[pb.SignStreamRequest]:
        while True:
            item = await self._queue.get()
            if item is None:
                return
            yield item

    async def _read(self) -> None:
        failure: CustosError = Unavailable("UNAVAILABLE", "STREAM_ENDED", "custos ended the sign stream")
        try:
            async for answer in self._call:
                self._sends.discard(answer.request_id)
                future = self._pending.pop(answer.request_id, None)
                if future is not None and not future.done():
                    future.set_result(answer)
        except grpc.RpcError as e:
            failure = from_rpc_error(e)
        except asyncio.CancelledError:
            # grpc.aio ends a CANCELLED call (cancelled here, or by the other side) this way, not
            # with an RpcError: the pending calls must still end.
            self._fail(error_for(grpc.StatusCode.CANCELLED, "CANCELLED", "the sign stream was cancelled"))
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise  # this reader itself is being cancelled
            return
        self._fail(failure)

    def _fail(self, failure: CustosError) -> None:
        self._failure = failure
        for request_id, future in self._pending.items():
            if not future.done():
                # A send may already be at the exchange: report it so, never as retryable.
                future.set_exception(_send_broken(failure) if request_id in self._sends else failure)
        self._pending.clear()
        self._sends.clear()


def _send_broken(failure: CustosError) -> SendOutcomeUnknown:
    return SendOutcomeUnknown(failure.code, failure.reason, f"the sign stream broke with the send pending: {failure.message}", failure.rule, failure.request_id)


def _denial(answer: pb.SignStreamResponse) -> CustosError:
    if answer.WhichOneof("result") != "denial":
        return CustosError("INTERNAL", "INTERNAL", "unexpected answer in the sign stream")
    d = answer.denial
    return error_for(d.code, d.reason, d.message, d.rule)
