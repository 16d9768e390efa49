"""``aiohttp`` integration: ``aiohttp.ClientSession(request_class=CustosAiohttpAuth(client, "key").request_class)``.

aiohttp's ``auth=`` takes only ``BasicAuth`` (3.8, Debian 12's), so signing hooks in where
aiohttp lets it: a ``ClientRequest`` subclass that signs through custos just before sending.
Every request of that session is signed with the one key; the secret never exists here.
"""
from __future__ import annotations

from typing import Any

import aiohttp
from aiohttp import hdrs, payload
from yarl import URL

from .aio import AsyncClient
from .messages import SignedRequest


class CustosAiohttpAuth:
    """Signs a session's requests with ``key`` through ``client`` (``options`` as for :class:`CustosAuth`)."""

    def __init__(self, client: AsyncClient, key: str, **options: Any) -> None:
        self.client = client
        self.key = key
        self.options = options
        auth = self

        class CustosSignedRequest(aiohttp.ClientRequest):
            async def send(self, conn: Any) -> aiohttp.ClientResponse:
                await auth._apply(self)
                return await super().send(conn)

        self.request_class = CustosSignedRequest

    async def sign(self, method: str, url: URL, body: bytes | None) -> SignedRequest:
        return await self.client.sign_exchange_request(self.key, method, url.raw_path or "/", url.raw_query_string, body, **self.options)

    async def _apply(self, request: aiohttp.ClientRequest) -> None:
        body = _body_bytes(request.body)
        signed = await self.sign(request.method, request.url, body)
        query = f"?{signed.query}" if signed.query else ""
        request.url = URL(f"{request.url.scheme}://{request.url.raw_authority}{request.url.raw_path}{query}", encoded=True)
        for name, value in signed.headers.items():
            request.headers[name] = value
        if body is not None or signed.body:
            request.headers.pop(hdrs.CONTENT_LENGTH, None)
            request.update_body_from_data(signed.body)


def _body_bytes(body: Any) -> bytes | None:
    if body is None or body == b"":
        return None
    if isinstance(body, payload.BytesPayload):  # bytes, str and json= bodies
        return bytes(body._value)
    raise TypeError("CustosAiohttpAuth signs exact bytes: pass data= bytes/str or json=, not a stream or form")
