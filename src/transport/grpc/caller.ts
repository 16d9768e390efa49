import type { PeerCertificate } from "node:tls";
import { identityFromPeerCertificate, peerAddressIp } from "../../pki/index.js";
import type { CallerContext } from "../../signing/sign-service.js";

/** What a caller lookup needs of any grpc-js server call. */
export interface PeerInfo {
  getPeer(): string;
  getAuthContext(): { sslPeerCertificate?: PeerCertificate } | null;
}

/**
 * Identity from the verified peer certificate (grpc-js exposes it only for authorized
 * TLS connections) and the peer IP. Never from request fields or metadata.
 */
export function callerOf(call: PeerInfo): CallerContext {
  const identity = identityFromPeerCertificate(call.getAuthContext()?.sslPeerCertificate);
  return { identity, ip: peerAddressIp(hostOf(call.getPeer())) };
}

/** "1.2.3.4:5678" / "[::1]:5678" → the address. */
function hostOf(peer: string): string | undefined {
  const m = /^\[?([^\]]+?)\]?:\d+$/.exec(peer);
  return m?.[1];
}
