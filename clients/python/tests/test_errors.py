"""Unit: how a failed call becomes a typed error (a fake RpcError stands in for grpc's)."""
from __future__ import annotations

import grpc
import pytest

from custos_client import CustosError, InvalidRequest, Refused, SendOutcomeUnknown, Unavailable
from custos_client._gen import error_details_pb2
from custos_client.errors import error_for, from_rpc_error, from_send_rpc_error, send_error_for


class FakeRpcError(grpc.RpcError):
    def __init__(self, code: grpc.StatusCode, details: str, trailers: tuple) -> None:
        self._code, self._details, self._trailers = code, details, trailers

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._details

    def trailing_metadata(self) -> tuple:
        return self._trailers


def status_details(reason: str, metadata: dict) -> bytes:
    info = error_details_pb2.ErrorInfo(reason=reason, domain="custos.dev", metadata=metadata)
    status = error_details_pb2.Status(code=7, message="denied")
    detail = status.details.add()
    detail.type_url, detail.value = "type.googleapis.com/google.rpc.ErrorInfo", info.SerializeToString()
    return status.SerializeToString()


@pytest.mark.parametrize("code, kind", [
    (grpc.StatusCode.PERMISSION_DENIED, Refused), (grpc.StatusCode.NOT_FOUND, Refused),
    (grpc.StatusCode.FAILED_PRECONDITION, Refused), (grpc.StatusCode.RESOURCE_EXHAUSTED, Refused),
    (grpc.StatusCode.UNAUTHENTICATED, Refused), (grpc.StatusCode.INVALID_ARGUMENT, InvalidRequest),
    (grpc.StatusCode.UNAVAILABLE, Unavailable), (grpc.StatusCode.DEADLINE_EXCEEDED, Unavailable),
    (grpc.StatusCode.INTERNAL, CustosError),
])
def test_status_codes_map_to_typed_errors(code, kind):
    err = from_rpc_error(FakeRpcError(code, "text", ()))
    assert type(err) is kind and err.code == code.name and err.retryable == (kind is Unavailable)
    assert type(error_for(code.value[0], "R", "text")) is kind  # a stream Denial's numeric code


def test_reason_rule_and_request_id_come_from_error_info_when_trailers_lack_them():
    blob = status_details("POLICY_DENIED", {"requestId": "req-1", "rule": "class:withdraw"})
    err = from_rpc_error(FakeRpcError(grpc.StatusCode.PERMISSION_DENIED, "denied", (("grpc-status-details-bin", blob),)))
    assert (err.reason, err.rule, err.request_id) == ("POLICY_DENIED", "class:withdraw", "req-1")


def test_malformed_details_do_not_hide_the_status():
    trailers = (("custos-reason", "NO_GRANT"), ("grpc-status-details-bin", b"\xff\xff not a status"))
    err = from_rpc_error(FakeRpcError(grpc.StatusCode.PERMISSION_DENIED, "no grant", trailers))
    assert (type(err), err.reason, err.request_id) == (Refused, "NO_GRANT", "")


@pytest.mark.parametrize("code, reason, kind", [
    # Refused before anything is signed or sent: another address (or a later call) may take it.
    (grpc.StatusCode.UNAVAILABLE, "HSM_UNAVAILABLE", Unavailable),
    (grpc.StatusCode.UNAVAILABLE, "AUDIT_BACKLOG", Unavailable),
    # custos's refusals are decisions before signing.
    (grpc.StatusCode.PERMISSION_DENIED, "POLICY_DENIED", Refused),
    (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_ARGUMENT", InvalidRequest),
    (grpc.StatusCode.UNIMPLEMENTED, "", CustosError),
    # Possibly at the exchange already.
    (grpc.StatusCode.UNAVAILABLE, "EXCHANGE_UNAVAILABLE", SendOutcomeUnknown),
    (grpc.StatusCode.UNAVAILABLE, "EXCHANGE_RESPONSE_TOO_LARGE", SendOutcomeUnknown),
    (grpc.StatusCode.UNAVAILABLE, "STORE_ERROR", SendOutcomeUnknown),
    (grpc.StatusCode.UNAVAILABLE, "", SendOutcomeUnknown),
    (grpc.StatusCode.DEADLINE_EXCEEDED, "", SendOutcomeUnknown),
    (grpc.StatusCode.CANCELLED, "", SendOutcomeUnknown),
    (grpc.StatusCode.INTERNAL, "INTERNAL", SendOutcomeUnknown),
    (grpc.StatusCode.RESOURCE_EXHAUSTED, "", SendOutcomeUnknown),  # grpc's own: the answer was too large
])
def test_a_failed_send_is_retryable_only_when_custos_refused_it_before_sending(code, reason, kind):
    trailers = (("custos-reason", reason),) if reason else ()
    err = from_send_rpc_error(FakeRpcError(code, "text", trailers))
    assert type(err) is kind and err.code == code.name
    assert err.retryable == (kind is Unavailable)
    assert type(send_error_for(code.value[0], reason, "text")) is kind  # a stream Denial's numeric code
    if kind is SendOutcomeUnknown:
        assert err.reason == (reason or code.name) and "may have been placed" in str(err)
