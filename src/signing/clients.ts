/** Trading engines sign; administrators manage keys and clients. */
export type ClientRole = "trader" | "admin";

/** A known mTLS identity, its CIDR allowlist and the keys it may sign with. */
export interface ClientRecord {
  /** URI SAN of the client certificate (e.g. spiffe://custos/engine/alpha) or "cn:NAME". */
  identity: string;
  name: string;
  role: ClientRole;
  cidrs: string[];
  createdAt: string;
  /** May freeze keys and clients at once (a risk engine). */
  canFreeze?: boolean;
  /** Set while frozen: every sign by this client is refused until a quorum thaws it. */
  frozenAt?: string | null;
  frozenReason?: string | null;
}

export function isClientRole(s: string): s is ClientRole {
  return s === "trader" || s === "admin";
}
