"""Python client of custos: sign exchange requests through an HSM, never holding the secret.

``Client`` (synchronous, ``grpc``) and ``AsyncClient`` (``grpc.aio``, with ``SignStream``)
sign REST requests, WebSocket logins and raw payloads, or have custos sign and send a request
itself (``send_exchange_request``, never sent twice); ``custos_client.requests.CustosAuth``
and ``custos_client.aiohttp.CustosAiohttpAuth`` sign a bot's own HTTP requests.
"""
from .aio import AsyncClient, SignStream
from .client import Client
from .connection import Connection
from .errors import CustosError, InvalidRequest, Refused, SendOutcomeUnknown, Unavailable
from .messages import ExchangeReply, Signature, SignedRequest, SignedWebSocketAuth

__all__ = [
    "AsyncClient", "Client", "Connection", "CustosError", "ExchangeReply", "InvalidRequest", "Refused",
    "SendOutcomeUnknown", "SignStream", "Signature", "SignedRequest", "SignedWebSocketAuth", "Unavailable",
]
__version__ = "0.1.0"
