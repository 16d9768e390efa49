"""Plain Python values in, protobuf messages out, and back: the client's public data types."""
from __future__ import annotations

import json as _json
from dataclasses import dataclass
from typing import Any, Mapping, Optional, Sequence, Union

from ._gen import signer_pb2 as pb

Query = Union[str, Sequence[tuple[str, str]], Mapping[str, str], None]
Body = Union[str, bytes, None]

ENCODINGS = {"raw": pb.SIGNATURE_ENCODING_RAW, "hex": pb.SIGNATURE_ENCODING_HEX, "base64": pb.SIGNATURE_ENCODING_BASE64}


@dataclass(frozen=True)
class SignedRequest:
    """What to send: the final query string (without ``?``), headers to set and the exact body."""

    query: str
    headers: dict[str, str]
    body: bytes
    params: list[tuple[str, str]]
    signature: str
    timestamp: str
    key_version: int
    api_key_id: str
    endpoint_class: str

    def url(self, base: str, path: str) -> str:
        """``base + path`` with the signed query appended."""
        return f"{base.rstrip('/')}{path}{'?' + self.query if self.query else ''}"


@dataclass(frozen=True)
class ExchangeReply:
    """The exchange's answer to a request custos signed and sent, verbatim.

    Refusals by the exchange (4xx, Bybit's ``retCode``) are replies too: read ``status`` and the
    body. ``headers`` are the exchange's, lower-case names in order (a name may repeat).
    """

    status: int
    headers: list[tuple[str, str]]
    body: bytes
    key_version: int
    endpoint_class: str
    round_trip_us: int

    def json(self) -> Any:
        """The body parsed as JSON (every supported exchange answers JSON)."""
        return _json.loads(self.body)

    def header(self, name: str) -> Optional[str]:
        """The first value of header ``name`` (any case), or None."""
        name = name.lower()
        return next((v for n, v in self.headers if n == name), None)


@dataclass(frozen=True)
class SignedWebSocketAuth:
    """The exchange's WebSocket login/auth message: its fields in order, and the full JSON when fixed."""

    fields: list[tuple[str, str]]
    message: str
    signature: str
    timestamp: str
    key_version: int
    api_key_id: str


@dataclass(frozen=True)
class Signature:
    """A raw signature: bytes for ``encoding="raw"``, else ``text`` (hex or base64)."""

    signature: bytes
    text: str
    key_version: int
    api_key_id: str


def exchange_request(
    key: str,
    method: str,
    path: str,
    query: Query = None,
    body: Body = None,
    *,
    version: int = 0,
    timestamp_ms: int = 0,
    nonce: str = "",
    expires: int = 0,
    recv_window_ms: int = 0,
    passphrase: str = "",
    api_key_version: str = "",
    omit_nonce: bool = False,
) -> pb.ExchangeRequest:
    """An ``ExchangeRequest``: ``query`` is the exact string as sent, or ordered pairs custos encodes."""
    req = pb.ExchangeRequest(
        key_id=key, version=version, method=method.upper(), path=path,
        body=body.encode("utf-8") if isinstance(body, str) else (body or b""),
        timestamp_ms=timestamp_ms, nonce=nonce, expires=expires, recv_window_ms=recv_window_ms,
        passphrase=passphrase, api_key_version=api_key_version, omit_nonce=omit_nonce,
    )
    if isinstance(query, str):
        req.query = query
    elif query is not None:
        pairs = query.items() if isinstance(query, Mapping) else query
        req.query_params.extend(pb.QueryParam(name=n, value=v) for n, v in pairs)
    return req


def websocket_auth_request(
    key: str,
    *,
    version: int = 0,
    timestamp_ms: int = 0,
    nonce: str = "",
    expires: int = 0,
    challenge: str = "",
    channel: str = "",
    event: str = "",
    passphrase: str = "",
    ws_method: str = "",
    ws_params: Optional[Sequence[tuple[str, str]]] = None,
) -> pb.WebSocketAuthRequest:
    return pb.WebSocketAuthRequest(
        key_id=key, version=version, timestamp_ms=timestamp_ms, nonce=nonce, expires=expires, challenge=challenge,
        channel=channel, event=event, passphrase=passphrase, ws_method=ws_method,
        ws_params=[pb.QueryParam(name=n, value=v) for n, v in (ws_params or ())],
    )


def sign_request(key: str, payload: bytes, version: int = 0, encoding: str = "raw") -> pb.SignRequest:
    return pb.SignRequest(key_id=key, version=version, payload=payload, encoding=ENCODINGS[encoding])


def signed_request(r: pb.SignedExchangeRequest) -> SignedRequest:
    return SignedRequest(
        query=r.query, headers={h.name: h.value for h in r.headers}, body=r.body,
        params=[(p.name, p.value) for p in r.params], signature=r.signature, timestamp=r.timestamp,
        key_version=r.key_version, api_key_id=r.api_key_id, endpoint_class=r.endpoint_class,
    )


def exchange_reply(r: pb.ExchangeResponse) -> ExchangeReply:
    return ExchangeReply(
        status=r.status, headers=[(h.name, h.value) for h in r.headers], body=r.body,
        key_version=r.key_version, endpoint_class=r.endpoint_class, round_trip_us=int(r.round_trip_us),
    )


def signed_websocket_auth(r: pb.SignedWebSocketAuth) -> SignedWebSocketAuth:
    return SignedWebSocketAuth(
        fields=[(f.name, f.value) for f in r.fields], message=r.message, signature=r.signature,
        timestamp=r.timestamp, key_version=r.key_version, api_key_id=r.api_key_id,
    )


def signature(r: pb.SignResponse) -> Signature:
    return Signature(signature=r.signature, text=r.signature_text, key_version=r.key_version, api_key_id=r.api_key_id)
