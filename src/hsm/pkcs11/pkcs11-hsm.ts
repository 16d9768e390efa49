import type { Logger } from "pino";
import { CustosError } from "../../errors.js";
import { algorithmSpec, type EddsaAlgorithm, type SigningAlgorithm } from "../algorithms.js";
import type { ImportEnvelope } from "../envelope.js";
import type { CheckpointHead } from "../checkpoint-statement.js";
import type { AuditCheckpointSigner, Hsm, HsmStatus, SecretObjectRef, WrappingKeyInfo } from "../hsm.js";
import { checkpointPublicKeySpki, signCheckpointStatement } from "./checkpoint-key.js";
import { STALE_HANDLE, CKR_USER_ALREADY_LOGGED_IN, ckrName, ckrOf, isSessionLost, toCustosError } from "./ckr.js";
import { assertIdFree, destroyVersionObjects, ed25519PublicKey, generateEd25519KeyPair, signingKeyIds, unwrapEd25519PrivateKey } from "./key-objects.js";
import { assertLoggedIn, findSigningKey, findSlotByLabel, initialize, loadModule, pkcs11js, signingHandle, type Handle, type Module } from "./module.js";
import { SessionPool } from "./session-pool.js";
import { WorkerDispatch } from "./worker-dispatch.js";
import { secretTemplate } from "./templates.js";
import { checkEnvelope, clearOpenSslErrors, readWrappingKey, unwrapEnvelopeKey, type WrappingKeyHandle } from "./wrapping-key.js";

export interface Pkcs11HsmOptions {
  modulePath: string;
  tokenLabel: string;
  /** The user PIN, already read from an env var or a 0600 file by the config loader. */
  pin: string;
  /** Sessions opened on the token (async dispatch leases one per in-flight operation). */
  sessions: number;
  /**
   * sync: C_SignInit + C_Sign on the event loop (~6 µs on in-process SoftHSM2; a thread
   * hop alone costs ~40 µs). async: C_SignAsync on pooled sessions, many in flight, for
   * network HSMs (0.1–5 ms a call) that must not block the event loop.
   * auto: sync for SoftHSM2, async for anything else.
   */
  dispatch: "sync" | "async" | "worker" | "auto";
  /** OAEP hash the HSM accepts for unwrapping (SoftHSM2 2.6 accepts only SHA-1). */
  oaepHash: "sha1" | "sha256";
  /** Queue length past which sign calls fail with UNAVAILABLE instead of waiting. */
  maxWaiters?: number;
  logger: Logger;
}

/**
 * An empty Buffer reaches C_Sign as a NULL pointer: SoftHSM2 answers CKR_ARGUMENTS_BAD and
 * leaves the sign operation active, so every later C_SignInit on that session fails with
 * CKR_OPERATION_ACTIVE. A zero-length view of a real allocation is a valid pointer.
 */
const EMPTY_INPUT = Buffer.alloc(1).subarray(0, 0);

/**
 * The PKCS#11 backend. Holds one login per process, a pool of sessions, and a cache of
 * object handles (searches are linear in the token's object count, so never per request).
 * When the token drops its sessions or login, calls fail fast with HSM_UNAVAILABLE while a
 * background loop reopens with backoff.
 */
export class Pkcs11Hsm implements Hsm, AuditCheckpointSigner {
  private readonly mod: Module;
  private readonly dispatch: "sync" | "async" | "worker";
  /** The signing thread (dispatch "worker"). */
  private readonly worker: WorkerDispatch | undefined;
  private turnCalls = 0;
  private slot: Handle | undefined;
  private pool: SessionPool<Handle> | undefined;
  private handles = new Map<string, Handle>();
  private wrapping: WrappingKeyHandle | undefined;
  private unavailableReason: string | undefined = "not opened";
  private recovering = false;
  private closed = false;
  private backoffMs = 50;
  private recoverTimer: NodeJS.Timeout | undefined;

  private constructor(private readonly opts: Pkcs11HsmOptions) {
    this.mod = loadModule(opts.modulePath);
    this.dispatch = opts.dispatch === "auto" ? (/softhsm/i.test(opts.modulePath) ? "worker" : "async") : opts.dispatch;
    this.worker = this.dispatch === "worker" ? new WorkerDispatch({ modulePath: opts.modulePath, tokenLabel: opts.tokenLabel }) : undefined;
  }

  /** Loads the module, finds the token by label, logs in and opens the session pool. */
  static async open(opts: Pkcs11HsmOptions): Promise<Pkcs11Hsm> {
    const hsm = new Pkcs11Hsm(opts);
    hsm.connect();
    return hsm;
  }

  // ---- signing (hot path) -------------------------------------------------------------

  async sign(objectId: string, algorithm: SigningAlgorithm, data: Uint8Array): Promise<Buffer> {
    const pool = this.readyPool();
    const spec = algorithmSpec(algorithm);
    const mechanism = { mechanism: spec.mechanism };
    const input = data.byteLength === 0 ? EMPTY_INPUT : Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    // Worker dispatch, except for a lone call: the first sign of an event-loop turn, with the
    // signing thread idle, is cheapest done right here (~7 µs) rather than across threads
    // (~40 µs). Under load, calls share turns and go to the thread, which spends the second
    // core on the HSM.
    if (this.worker && (this.busyTurn() || this.worker.inFlight > 0)) {
      try {
        return await this.worker.sign(objectId, spec.mechanism, spec.macBytes, input);
      } catch (e) {
        throw this.fail(e, "C_Sign");
      }
    }
    // Stale handle (object re-created, or handles reset by a re-login): re-find once.
    for (let attempt = 0; ; attempt++) {
      // Sync dispatch never waits for a session unless an admin operation holds them all.
      const session = (this.dispatch !== "async" ? pool.tryLease() : undefined) ?? (await pool.lease());
      let reusable = true;
      try {
        const key = this.handleFor(session, objectId);
        // Always a full-length buffer: CKR_BUFFER_TOO_SMALL would leave the operation active.
        const out = Buffer.allocUnsafe(spec.macBytes);
        this.mod.C_SignInit(session, mechanism, key);
        if (this.dispatch !== "async") return this.mod.C_Sign(session, input, out);
        // The native worker keeps raw pointers to input/out: both stay referenced here until it settles.
        return await this.mod.C_SignAsync(session, input, out);
      } catch (e) {
        if (attempt === 0 && STALE_HANDLE.has(ckrOf(e) ?? -1)) {
          this.handles.delete(objectId);
          continue;
        }
        const err = this.fail(e, "C_Sign");
        // A failed C_Sign may leave the operation active (every later C_SignInit on this
        // session would fail): replace the session rather than return it to the pool.
        reusable = err.code === "HSM_UNAVAILABLE";
        throw err;
      } finally {
        if (reusable) pool.release(session);
        else this.replaceSession(pool, session);
      }
    }
  }

  /** Counts sign calls in this event-loop turn; true from the second one on. */
  private busyTurn(): boolean {
    if (this.turnCalls++ === 0) setImmediate(() => (this.turnCalls = 0));
    return this.turnCalls > 1;
  }

  private replaceSession(pool: SessionPool<Handle>, old: Handle): void {
    try {
      this.mod.C_CloseSession(old);
    } catch {
      /* already gone */
    }
    let fresh: Handle | undefined;
    try {
      fresh = this.mod.C_OpenSession(this.slot!, pkcs11js.CKF_SERIAL_SESSION | pkcs11js.CKF_RW_SESSION);
    } catch (e) {
      this.opts.logger.warn({ event: "hsm.session_replace_failed", ckr: ckrName(ckrOf(e) ?? 0) }, "could not reopen a session");
    }
    pool.replace(old, fresh);
  }

  /** The cached signing handle (an in-HSM session copy; see signingHandle). */
  private handleFor(session: Handle, objectId: string): Handle {
    const cached = this.handles.get(objectId);
    if (cached) return cached;
    const handle = signingHandle(this.mod, session, objectId, (ckr) =>
      this.opts.logger.debug({ event: "hsm.no_session_copy", objectId, ckr: ckrName(ckr) }, "signing from the token object"),
    );
    if (!handle) throw new CustosError("HSM_ERROR", `secret object ${objectId} is not on the token`);
    this.handles.set(objectId, handle);
    return handle;
  }

  private sessionAlive(session: Handle): boolean {
    try {
      this.assertLoggedIn(session);
      return true;
    } catch {
      return false;
    }
  }

  /** A private object is invisible when the login is gone: report that as a lost login. */
  private assertLoggedIn(session: Handle): void {
    assertLoggedIn(this.mod, session);
  }

  // ---- key material ---------------------------------------------------------------------

  async unwrapSecret(envelope: ImportEnvelope, target: SecretObjectRef): Promise<void> {
    await this.openEnvelope(envelope, target, (session, aesKey) => {
      this.mod.C_UnwrapKey(session, { mechanism: pkcs11js.CKM_AES_KEY_WRAP_PAD }, aesKey, envelope.wrappedKey, secretTemplate(target));
    });
  }

  async unwrapPrivateKey(algorithm: EddsaAlgorithm, envelope: ImportEnvelope, target: SecretObjectRef, publicKeySpki: Buffer): Promise<void> {
    // The type allows only EdDSA; this guards untyped callers.
    if (algorithmSpec(algorithm).kind !== "eddsa") throw new CustosError("INVALID_ARGUMENT", `cannot import a ${algorithm} private key`);
    await this.openEnvelope(envelope, target, (session, aesKey) =>
      unwrapEd25519PrivateKey(this.mod, session, aesKey, envelope.wrappedKey, target, publicKeySpki),
    );
  }

  /**
   * Checks the envelope, unwraps its one-time AES key (RSA-OAEP, an unwrap-only session object)
   * and lets `open` unwrap the payload with it; the AES key is destroyed either way.
   */
  private async openEnvelope(envelope: ImportEnvelope, target: SecretObjectRef, open: (session: Handle, aesKey: Handle) => void): Promise<void> {
    const wrapping = this.wrappingOrThrow();
    checkEnvelope(envelope, wrapping.info);
    await this.withSession(async (session) => {
      assertIdFree(this.mod, session, target.objectId);
      let aesKey: Handle | undefined;
      try {
        aesKey = unwrapEnvelopeKey(this.mod, session, wrapping.privateHandle, envelope);
        open(session, aesKey);
      } catch (e) {
        if (e instanceof CustosError) {
          clearOpenSslErrors();
          throw e;
        }
        // SoftHSM2 answers CKR_GENERAL_ERROR for an envelope that does not decrypt (OAEP or
        // KWP integrity check). If this session is still logged in, the envelope is at fault,
        // not the device: don't drop every session (and the login) over a bad import.
        if (ckrOf(e) === pkcs11js.CKR_GENERAL_ERROR && this.sessionAlive(session)) {
          clearOpenSslErrors();
          throw new CustosError("ENVELOPE_INVALID", "import envelope does not open (CKR_GENERAL_ERROR)", { cause: e });
        }
        throw this.fail(e, "C_UnwrapKey", { unwrapping: true });
      } finally {
        // The one-time key is a session object, but destroy it now rather than at session close.
        if (aesKey) {
          try {
            this.mod.C_DestroyObject(session, aesKey);
          } catch (e) {
            this.opts.logger.warn({ event: "hsm.destroy_failed", ckr: ckrName(ckrOf(e) ?? 0) }, "could not destroy envelope key");
          }
        }
      }
    });
  }

  async generateKeyPair(algorithm: EddsaAlgorithm, target: SecretObjectRef): Promise<{ spkiDer: Buffer }> {
    // The type allows only EdDSA; this guards untyped callers.
    if (algorithmSpec(algorithm).kind !== "eddsa") throw new CustosError("INVALID_ARGUMENT", `cannot generate a ${algorithm} key pair`);
    return this.withSession(async (session) => ({ spkiDer: generateEd25519KeyPair(this.mod, session, target) }));
  }

  async publicKey(objectId: string): Promise<Buffer | undefined> {
    return this.withSession(async (session) => ed25519PublicKey(this.mod, session, objectId));
  }

  async hasSecret(objectId: string): Promise<boolean> {
    return this.withSession(async (session) => {
      const found = findSigningKey(this.mod, session, objectId) !== undefined;
      if (!found) this.assertLoggedIn(session);
      return found;
    });
  }

  async listSecretIds(): Promise<string[]> {
    return this.withSession(async (session) => signingKeyIds(this.mod, session));
  }

  async destroySecret(objectId: string): Promise<void> {
    await this.withSession(async (session) => {
      destroyVersionObjects(this.mod, session, objectId);
      this.handles.delete(objectId);
    });
  }

  async checkpointPublicKey(): Promise<Buffer> {
    const spki = await this.withSession(async (session) => checkpointPublicKeySpki(this.mod, session));
    if (!spki) throw new CustosError("HSM_ERROR", `token "${this.opts.tokenLabel}" has no audit checkpoint key: run \`custos hsm init\``);
    return spki;
  }

  async signCheckpoint(head: CheckpointHead): Promise<Buffer> {
    return this.withSession(async (session) => signCheckpointStatement(this.mod, session, head));
  }

  check(): void {
    const pool = this.pool;
    if (this.unavailableReason !== undefined || !pool) return;
    const session = pool.tryLease();
    if (session === undefined) return; // all busy: the sign path itself will notice a loss
    try {
      this.assertLoggedIn(session);
    } catch (e) {
      this.fail(e, "C_GetSessionInfo");
    } finally {
      pool.release(session);
    }
  }

  wrappingKey(): WrappingKeyInfo {
    return this.wrappingOrThrow().info;
  }

  private wrappingOrThrow(): WrappingKeyHandle {
    if (this.unavailableReason !== undefined) this.readyPool();
    if (!this.wrapping) {
      throw new CustosError("HSM_ERROR", `token "${this.opts.tokenLabel}" has no wrapping key: run \`custos hsm init\``);
    }
    return this.wrapping;
  }

  // ---- status and lifecycle -------------------------------------------------------------

  status(): HsmStatus {
    const ready = this.unavailableReason === undefined;
    return {
      ready,
      ...(ready ? {} : { reason: this.unavailableReason }),
      dispatch: this.dispatch,
      sessions: this.pool?.sessions.length ?? 0,
      sessionsInUse: this.pool?.inUse ?? 0,
      waiters: this.pool?.waiting ?? 0,
    };
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.recoverTimer);
    await this.worker?.close();
    this.dropSessions();
    this.unavailableReason = "closed";
  }

  private readyPool(): SessionPool<Handle> {
    if (this.unavailableReason !== undefined || !this.pool) {
      throw new CustosError("HSM_UNAVAILABLE", `HSM unavailable: ${this.unavailableReason ?? "no sessions"}`, { retryable: true });
    }
    return this.pool;
  }

  private async withSession<T>(fn: (session: Handle) => Promise<T>): Promise<T> {
    const pool = this.readyPool();
    const session = await pool.lease();
    try {
      return await fn(session);
    } catch (e) {
      throw this.fail(e, "HSM operation");
    } finally {
      pool.release(session);
    }
  }

  /** Maps a failure; a lost session or login starts recovery. */
  private fail(e: unknown, operation: string, opts: { unwrapping?: boolean } = {}): CustosError {
    clearOpenSslErrors();
    const err = toCustosError(e, operation, opts);
    if (isSessionLost(e) || (err.code === "HSM_UNAVAILABLE" && !(e instanceof CustosError))) this.startRecovery(err.message);
    return err;
  }

  /** Opens sessions, logs in and finds the wrapping key. Throws on failure. */
  private connect(): void {
    const slot = findSlotByLabel(this.mod, this.opts.tokenLabel);
    if (!slot) throw new CustosError("HSM_UNAVAILABLE", `no initialised token labelled "${this.opts.tokenLabel}"`, { retryable: true });
    this.slot = slot;
    const flags = pkcs11js.CKF_SERIAL_SESSION | pkcs11js.CKF_RW_SESSION;
    const sessions: Handle[] = [];
    try {
      for (let i = 0; i < Math.max(1, this.opts.sessions); i++) sessions.push(this.mod.C_OpenSession(slot, flags));
      try {
        this.mod.C_Login(sessions[0]!, pkcs11js.CKU_USER, this.opts.pin);
      } catch (e) {
        if (ckrOf(e) !== CKR_USER_ALREADY_LOGGED_IN) throw e;
      }
      this.handles = new Map(); // handles from before a re-login are invalid
      this.wrapping = readWrappingKey(this.mod, sessions[0]!, this.opts.oaepHash);
    } catch (e) {
      for (const s of sessions) {
        try {
          this.mod.C_CloseSession(s);
        } catch {
          /* already gone */
        }
      }
      throw toCustosError(e, "open HSM sessions");
    }
    this.pool = new SessionPool(sessions, this.opts.maxWaiters ?? 10_000);
    this.worker?.reset(); // its session and handles predate this login
    this.unavailableReason = undefined;
    this.backoffMs = 50;
  }

  private dropSessions(): void {
    this.pool?.close();
    this.pool = undefined;
    this.handles = new Map();
    if (this.slot) {
      try {
        this.mod.C_CloseAllSessions(this.slot);
      } catch {
        /* the module may be gone too; reconnect handles that */
      }
    }
  }

  private startRecovery(reason: string): void {
    if (this.recovering || this.closed) return;
    this.recovering = true;
    this.unavailableReason = `recovering: ${reason}`;
    this.opts.logger.error({ event: "hsm.unavailable", reason }, "HSM sessions lost; reopening");
    this.dropSessions();
    this.scheduleRecovery();
  }

  private scheduleRecovery(): void {
    this.recoverTimer = setTimeout(() => {
      if (this.closed) return;
      try {
        initialize(this.mod); // no-op unless the module was finalised underneath us
        this.connect();
        this.recovering = false;
        this.opts.logger.info({ event: "hsm.recovered" }, "HSM sessions reopened");
      } catch (e) {
        this.unavailableReason = `recovering: ${e instanceof Error ? e.message : String(e)}`;
        this.backoffMs = Math.min(this.backoffMs * 2, 5_000);
        this.scheduleRecovery();
      }
    }, this.backoffMs);
    this.recoverTimer.unref();
  }
}
