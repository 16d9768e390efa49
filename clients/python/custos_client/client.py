"""The synchronous client (``grpc``): one call at a time per thread, failover across addresses."""
from __future__ import annotations

from typing import Any, Optional

import grpc

from . import messages
from ._gen import signer_pb2_grpc
from .connection import Connection
from .errors import Unavailable, from_rpc_error
from .messages import Body, Query, Signature, SignedRequest, SignedWebSocketAuth


class Client:
    """Signs through custos over gRPC with mTLS; the exchange secret never enters this process.

    Unary calls go to the first address that answers; an address that is unavailable is
    skipped for the next one (signing twice is harmless: nothing is sent to an exchange).
    Every failure is a :class:`custos_client.CustosError` subclass.
    """

    def __init__(self, connection: Connection, timeout: float = 10.0) -> None:
        self.connection = connection
        self.timeout = timeout
        self._stubs: list[Optional[signer_pb2_grpc.SignerStub]] = [None] * len(connection.addresses)
        self._channels: list[grpc.Channel] = []
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

    def sign_websocket_auth(self, key: str, **options: Any) -> SignedWebSocketAuth:
        """The login/auth message of ``key``'s exchange's private WebSocket, signed."""
        return messages.signed_websocket_auth(self._call("SignWebSocketAuth", messages.websocket_auth_request(key, **options)))

    def sign(self, key: str, payload: bytes, version: int = 0, encoding: str = "raw") -> Signature:
        """A raw signature (keys without an exchange dialect, or whose policy allows raw signing)."""
        return messages.signature(self._call("Sign", messages.sign_request(key, payload, version, encoding)))

    def close(self) -> None:
        for channel in self._channels:
            channel.close()
        self._channels.clear()
        self._stubs = [None] * len(self.connection.addresses)

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _stub(self, index: int) -> signer_pb2_grpc.SignerStub:
        stub = self._stubs[index]
        if stub is None:
            c = self.connection
            channel = grpc.secure_channel(c.addresses[index], c.credentials(), options=c.channel_options())
            self._channels.append(channel)
            stub = self._stubs[index] = signer_pb2_grpc.SignerStub(channel)
        return stub

    def _call(self, method: str, request: Any) -> Any:
        count = len(self.connection.addresses)
        last: Optional[Unavailable] = None
        for step in range(count):
            index = (self._preferred + step) % count
            try:
                response = getattr(self._stub(index), method)(request, timeout=self.timeout)
            except grpc.RpcError as e:
                err = from_rpc_error(e)
                if isinstance(err, Unavailable):
                    last = err
                    continue
                raise err from None
            self._preferred = index
            return response
        assert last is not None
        raise last
