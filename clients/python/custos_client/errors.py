"""Typed errors of the custos client: callers never see a bare ``grpc.RpcError``.

custos answers a refusal with a gRPC status, the ``custos-reason`` / ``custos-rule`` trailers
and a ``google.rpc.Status`` carrying an ``ErrorInfo`` (reason, domain, metadata.requestId and
metadata.rule) in ``grpc-status-details-bin``. Errors are classified by status code, never by
message text.
"""
from __future__ import annotations

from typing import Any, Iterable, Optional

import grpc

from ._gen import error_details_pb2

_ERROR_INFO_TYPE = "type.googleapis.com/google.rpc.ErrorInfo"


class CustosError(Exception):
    """Any failed call. ``code`` is the gRPC status name (e.g. ``"PERMISSION_DENIED"``)."""

    retryable = False

    def __init__(self, code: str, reason: str, message: str, rule: str = "", request_id: str = "") -> None:
        super().__init__(f"{code} ({reason}{f', rule {rule}' if rule else ''}): {message}")
        self.code = code
        self.reason = reason
        self.message = message
        self.rule = rule
        self.request_id = request_id


class Refused(CustosError):
    """custos decided not to sign: policy, grant, frozen key, unknown key, rate limit."""


class InvalidRequest(CustosError):
    """The request is malformed for its exchange (custos answered INVALID_ARGUMENT)."""


class Unavailable(CustosError):
    """custos (or its HSM or store) cannot answer now; the same call may succeed later."""

    retryable = True


class SendOutcomeUnknown(CustosError):
    """A ``send_exchange_request`` failed after it may have reached the exchange: **the order may
    have been placed**. Check the exchange (open orders, the client order id) before sending it again.

    Raised for custos's ``EXCHANGE_UNAVAILABLE`` (no answer in time, a reset) and
    ``EXCHANGE_RESPONSE_TOO_LARGE``, a deadline, a connection to custos lost mid-call and a
    sign stream that broke with the send pending. ``code`` and ``reason`` are the failure's own.
    Deliberately not an :class:`Unavailable`: a handler that retries those must not resend orders.
    """

    retryable = False

    def __init__(self, code: str, reason: str, message: str, rule: str = "", request_id: str = "") -> None:
        super().__init__(
            code, reason,
            f"the order may have been placed (the request may have reached the exchange): check the exchange before sending it again; {message}",
            rule, request_id,
        )


_BY_STATUS: dict[str, type[CustosError]] = {
    "UNAVAILABLE": Unavailable,
    "DEADLINE_EXCEEDED": Unavailable,
    "INVALID_ARGUMENT": InvalidRequest,
    "PERMISSION_DENIED": Refused,
    "UNAUTHENTICATED": Refused,
    "FAILED_PRECONDITION": Refused,
    "NOT_FOUND": Refused,
    "RESOURCE_EXHAUSTED": Refused,
}


def _status_name(code: Any) -> str:
    if isinstance(code, grpc.StatusCode):
        return code.name
    for c in grpc.StatusCode:
        if c.value[0] == code:
            return c.name
    return "UNKNOWN"


def error_for(code: Any, reason: str, message: str, rule: str = "", request_id: str = "") -> CustosError:
    """The typed error for a status (a ``grpc.StatusCode`` or its number, as in a stream ``Denial``)."""
    name = _status_name(code)
    return _BY_STATUS.get(name, CustosError)(name, reason or name, message, rule, request_id)


def _metadata_items(metadata: Optional[Iterable[Any]]) -> list[tuple[str, Any]]:
    return [(item[0], item[1]) for item in (metadata or ())]


# custos answers these before anything is signed or sent: a send refused so never left, and another
# address may take it. Every other UNAVAILABLE of a send may come after the exchange has it.
NOT_SENT_REASONS = frozenset({"HSM_UNAVAILABLE", "AUDIT_BACKLOG"})


def from_rpc_error(err: grpc.RpcError) -> CustosError:
    """Translates a failed call (sync or asyncio) into the typed error."""
    return error_for(*_details(err))


def from_send_rpc_error(err: grpc.RpcError) -> CustosError:
    """Translates a failed ``SendExchangeRequest`` that was issued to custos.

    :class:`Unavailable` (safe to send elsewhere or again) only for ``HSM_UNAVAILABLE`` and
    ``AUDIT_BACKLOG``; refusals custos gave (with its reason) and UNIMPLEMENTED as
    :func:`from_rpc_error` does; all else, above all an UNAVAILABLE without custos's reason (the connection dropped mid-call) and
    DEADLINE_EXCEEDED, is :class:`SendOutcomeUnknown`.
    """
    code, reason, message, rule, request_id = _details(err)
    return send_error_for(code, reason, message, rule, request_id)


def send_error_for(code: Any, reason: str, message: str, rule: str = "", request_id: str = "") -> CustosError:
    """The typed error of a failed send (``reason`` empty: custos gave none, e.g. a transport failure)."""
    name = _status_name(code)
    if name == "UNAVAILABLE" and reason in NOT_SENT_REASONS:
        return Unavailable(name, reason, message, rule, request_id)
    err = error_for(code, reason, message, rule, request_id)
    # A refusal is custos's decision, taken before signing; without custos's reason it is not one.
    # UNIMPLEMENTED: a custos without SendExchangeRequest, which cannot have sent anything.
    if (reason and isinstance(err, (Refused, InvalidRequest))) or name == "UNIMPLEMENTED":
        return err
    return SendOutcomeUnknown(name, reason or name, message, rule, request_id)


def _details(err: grpc.RpcError) -> tuple[Any, str, str, str, str]:
    """Status code, custos's reason ("" when it gave none), message, rule and request id."""
    code = err.code() if hasattr(err, "code") else grpc.StatusCode.UNKNOWN
    message = (err.details() if hasattr(err, "details") else "") or ""
    trailers = _metadata_items(err.trailing_metadata() if hasattr(err, "trailing_metadata") else None)
    reason = rule = request_id = ""
    for key, value in trailers:
        if key == "custos-reason":
            reason = value
        elif key == "custos-rule":
            rule = value
        elif key == "grpc-status-details-bin":
            info = _error_info(value)
            if info is not None:
                reason = reason or info.reason
                rule = rule or info.metadata.get("rule", "")
                request_id = info.metadata.get("requestId", "")
    return code, reason, message, rule, request_id


def _error_info(blob: bytes) -> Optional[error_details_pb2.ErrorInfo]:
    try:
        status = error_details_pb2.Status.FromString(blob)
        for detail in status.details:
            if detail.type_url == _ERROR_INFO_TYPE:
                return error_details_pb2.ErrorInfo.FromString(detail.value)
    except Exception:  # a malformed detail must not hide the status itself
        return None
    return None
