"""``requests`` integration: ``requests.post(url, params=…, auth=CustosAuth(client, "key"))``.

The request is signed through custos just before it is sent: custos sees the method, path,
exact query and body bytes, applies the key's policy, signs in its HSM and returns the query,
headers and body to send. The exchange secret never exists in this process.
"""
from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit, urlunsplit

import requests

from .client import Client


class CustosAuth(requests.auth.AuthBase):
    """Signs each request with ``key`` through ``client``.

    ``options`` are passed to every :meth:`Client.sign_exchange_request` (e.g. ``passphrase``
    for OKX, ``recv_window_ms`` for Binance and Bybit). A refusal raises
    :class:`custos_client.Refused` from the ``requests`` call; nothing is sent.
    """

    def __init__(self, client: Client, key: str, **options: Any) -> None:
        self.client = client
        self.key = key
        self.options = options

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        url = urlsplit(r.url or "")
        body = r.body
        if body is not None and not isinstance(body, (bytes, str)):
            raise TypeError("CustosAuth signs exact bytes: pass data= or json=, not a stream or file")
        signed = self.client.sign_exchange_request(self.key, r.method or "GET", url.path or "/", url.query, body, **self.options)
        r.url = urlunsplit((url.scheme, url.netloc, url.path, signed.query, ""))
        r.headers.update(signed.headers)
        if body is not None or signed.body:
            r.body = signed.body
            r.headers["Content-Length"] = str(len(signed.body))
        return r
