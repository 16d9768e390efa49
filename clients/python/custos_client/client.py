"""The synchronous client (``grpc``): one call at a time per thread, failover across addresses."""
from __future__ import annotations

import threading
from typing import Any, Optional

import grpc

from . import messages
from ._gen import signer_pb2_grpc
from .connection import Connection
from .errors import Unavailable, from_rpc_error, from_send_rpc_error
from .messages import Body, ExchangeReply, Query, Signature, SignedRequest, SignedWebSocketAuth


class Client:
    """Signs through custos over gRPC with mTLS; the exchange secret never enters this process.

    Signing calls go to the first address that answers; an address that is unavailable is
    skipped for the next one (signing twice is harmless: nothing is sent to an exchange).
    :meth:`send_exchange_request` (custos signs and sends) fails over only when the send provably
    never reached custos, and is never sent twice. Every failure is a
    :class:`custos_client.CustosError` subclass.

    ``timeout`` bounds each call (for a send it must exceed custos's ``egress.responseTimeoutMs``,
    or the deadline cuts off answers custos would have returned); ``connect_timeout`` bounds the
    wait for an address's connection before a send.
    """

    def __init__(self, connection: Connection, timeout: float = 10.0, connect_timeout: float = 5.0) -> None:
        self.connection = connection
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self._stubs: list[Optional[signer_pb2_grpc.SignerStub]] = [None] * len(connection.addresses)
        self._channels: list[Optional[grpc.Channel]] = [None] * len(connection.addresses)
        self._preferred = 0

    @classmethod
    def from_data_dir(cls, data_dir: str, cert_path: Optional[str] = None, key_path: Optional[str] = None, **kwargs: Any) -> "Client":
        """From ``DATA_DIR/connection.json`` (see :meth:`Connection.from_data_dir`)."""
        return cls(Connection.from_data_dir(data_dir, cert_path, key_path), **kwargs)

    def sign_exchange_request(self, key: str, method: str, path: str, query: Query = None, body: Body = None, **options: Any) -> SignedRequest:
        """Signs a REST request as ``key``'s exchange documents it; returns what to send.

        ``options``: ``timestamp_ms``, ``nonce``, ``expires``, ``recv_window_ms``, ``passphrase``
        (OKX, Bitget), ``api_key_version``, ``omit_nonce``, ``version``.
        """
        req = messages.exchange_request(key, method, path, query, body, **options)
        return messages.signed_request(self._call("SignExchangeRequest", req))

    def send_exchange_request(self, key: str, method: str, path: str, query: Query = None, body: Body = None, **options: Any) -> ExchangeReply:
        """custos signs the request and sends it to ``key``'s exchange itself; returns the exchange's answer.

        The only way to use an ``egressOnly`` key. Same arguments as :meth:`sign_exchange_request`;
        the exchange's refusals (4xx, Bybit's ``retCode`` …) are replies: read ``status`` and the body.

        Never sent twice. A send goes to the next address only when it provably never reached
        custos: the connection to its address did not become ready within ``connect_timeout``
        (checked before the call is issued), or custos refused it UNAVAILABLE with reason
        ``HSM_UNAVAILABLE`` or ``AUDIT_BACKLOG`` (refused before anything is signed or sent);
        :class:`Unavailable` (retryable) when every address failed so. Any other failure after
        the call was issued — ``EXCHANGE_UNAVAILABLE``, ``EXCHANGE_RESPONSE_TOO_LARGE``, the
        connection to custos lost, the deadline — raises :class:`SendOutcomeUnknown` at once, never
        retried: the order may have been placed, check the exchange before sending it again.
        custos's refusals (policy, grant, malformed request: ``Refused``, ``InvalidRequest``) sent nothing.
        """
        req = messages.exchange_request(key, method, path, query, body, **options)
        return messages.exchange_reply(self._call("SendExchangeRequest", req, send=True))

    def sign_websocket_auth(self, key: str, **options: Any) -> SignedWebSocketAuth:
        """The login/auth message of ``key``'s exchange's private WebSocket, signed."""
        return messages.signed_websocket_auth(self._call("SignWebSocketAuth", messages.websocket_auth_request(key, **options)))

    def sign(self, key: str, payload: bytes, version: int = 0, encoding: str = "raw") -> Signature:
        """A raw signature (keys without an exchange dialect, or whose policy allows raw signing)."""
        return messages.signature(self._call("Sign", messages.sign_request(key, payload, version, encoding)))

    def close(self) -> None:
        for channel in self._channels:
            if channel is not None:
                channel.close()
        self._channels = [None] * len(self.connection.addresses)
        self._stubs = [None] * len(self.connection.addresses)

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _stub(self, index: int) -> signer_pb2_grpc.SignerStub:
        stub = self._stubs[index]
        if stub is None:
            c = self.connection
            channel = self._channels[index] = grpc.secure_channel(c.addresses[index], c.credentials(), options=c.channel_options())
            stub = self._stubs[index] = signer_pb2_grpc.SignerStub(channel)
        return stub

    def _call(self, method: str, request: Any, send: bool = False) -> Any:
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
            if send and not _ready(self._channels[index], self.connect_timeout):
                last = not_connected(self.connection.addresses[index], self.connect_timeout)
                continue
            try:
                response = getattr(stub, method)(request, timeout=self.timeout)
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


def not_connected(address: str, timeout: float) -> Unavailable:
    return Unavailable("UNAVAILABLE", "NOT_CONNECTED", f"no connection to custos at {address} within {timeout:g} s; the request was not sent")


def _ready(channel: Any, timeout: float) -> bool:
    """True once the channel is READY; False on a failed connection attempt or after ``timeout``.

    A call is issued only on a ready channel, so a send that found none never reached custos. A
    failed attempt ends the wait at once (the next address is tried now, as a sign's failover does).
    """
    settled = threading.Event()
    ready = False

    def watch(state: grpc.ChannelConnectivity) -> None:
        nonlocal ready
        if state is grpc.ChannelConnectivity.READY:
            ready = True
            settled.set()
        elif state in (grpc.ChannelConnectivity.TRANSIENT_FAILURE, grpc.ChannelConnectivity.SHUTDOWN):
            settled.set()

    channel.subscribe(watch, try_to_connect=True)
    try:
        settled.wait(timeout)
    finally:
        channel.unsubscribe(watch)
    return ready
