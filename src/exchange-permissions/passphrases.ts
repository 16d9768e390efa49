/**
 * API passphrases callers sent with their own requests (OKX, Bitget: the exchange wants the passphrase
 * in clear with every request), held for custos's permission check of the same key. Memory only: never
 * written to the store, the audit log, a log line or a file; held per key for one version (the active
 * one the caller signed with), replaced by the next request that carries one, dropped when the key
 * rotates or a version is destroyed, and gone when the process ends.
 */
export class CallerPassphrases {
  private readonly held = new Map<string, { version: number; passphrase: string }>();

  /** Holds the passphrase a request for this key version carried; true when the version had none held yet. */
  remember(keyId: string, version: number, passphrase: string): boolean {
    const before = this.held.get(keyId);
    this.held.set(keyId, { version, passphrase });
    return before?.version !== version;
  }

  /** The passphrase held for exactly this key version. */
  of(keyId: string, version: number): string | undefined {
    const h = this.held.get(keyId);
    return h?.version === version ? h.passphrase : undefined;
  }

  /** Drops what is held for any other version than `version` (rotation), or for the key (`undefined`: destroyed). */
  keepOnly(keyId: string, version: number | undefined): void {
    if (this.held.get(keyId)?.version !== version) this.held.delete(keyId);
  }
}
