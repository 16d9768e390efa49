"""Where custos is and how to prove who we are: addresses, CA and client certificate (mTLS)."""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Optional, Sequence


@dataclass(frozen=True)
class Connection:
    """One custos deployment: one or more gRPC addresses (tried in order) and the mTLS files.

    ``server_name`` is the name the server certificate is issued for; it may differ from the
    dialled addresses (``127.0.0.1`` with a certificate for ``localhost``).
    """

    addresses: Sequence[str]
    ca_path: str
    cert_path: str
    key_path: str
    server_name: str = "localhost"
    options: Sequence[tuple[str, object]] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        if not self.addresses:
            raise ValueError("a custos connection needs at least one address")

    @classmethod
    def from_data_dir(cls, data_dir: str, cert_path: Optional[str] = None, key_path: Optional[str] = None) -> "Connection":
        """From ``DATA_DIR/connection.json`` as ``custos serve`` writes it.

        The embedded default's dev trading-client certificate is used unless ``cert_path`` and
        ``key_path`` are given. ``grpcAddresses`` (several addresses for failover) is used when
        the file offers it, else ``grpc``.
        """
        path = os.path.join(data_dir, "connection.json")
        try:
            with open(path, encoding="utf-8") as f:
                conn = json.load(f)
        except FileNotFoundError:
            raise FileNotFoundError(f"no {path}: is `custos serve --data-dir {data_dir}` running?") from None
        client = conn.get("client") or {}
        cert, key = cert_path or client.get("certPath"), key_path or client.get("keyPath")
        if not cert or not key:
            raise ValueError(f"no client certificate in {path}: pass cert_path and key_path")
        addresses = conn.get("grpcAddresses") or [conn["grpc"]]
        return cls(addresses=list(addresses), ca_path=conn["caPath"], cert_path=cert, key_path=key, server_name=conn.get("serverName", "localhost"))

    def credentials(self):  # -> grpc.ChannelCredentials
        """mTLS channel credentials (the files are read now; the key stays in this process only)."""
        import grpc

        with open(self.ca_path, "rb") as ca, open(self.key_path, "rb") as key, open(self.cert_path, "rb") as cert:
            return grpc.ssl_channel_credentials(root_certificates=ca.read(), private_key=key.read(), certificate_chain=cert.read())

    def channel_options(self) -> list[tuple[str, object]]:
        return [
            ("grpc.ssl_target_name_override", self.server_name),
            ("grpc.default_authority", self.server_name),
            *self.options,
        ]
