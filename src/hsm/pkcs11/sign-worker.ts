/**
 * The signing thread of `dispatch: "worker"`: owns one PKCS#11 session of its own and runs
 * C_SignInit + C_Sign for batches the event loop posts, so HSM time is spent on the second
 * core (and a slow network HSM never blocks the loop). The login is per process, so this
 * session is logged in whenever the main thread's is.
 */
import { parentPort, workerData } from "node:worker_threads";
import { ckrOf } from "./ckr.js";
import { findSlotByLabel, loadModule, pkcs11js, signingHandle, type Handle } from "./module.js";
import { decodeJobs, encodeOutcomes, type FromSigner, type SignJob, type SignOutcome, type ToSigner } from "./sign-batch.js";

const { modulePath, tokenLabel } = workerData as { modulePath: string; tokenLabel: string };
const mod = loadModule(modulePath); // C_Initialize: "already initialised" by the main thread is fine
const STALE = new Set([0x82, 0x60]);

let session: Handle | undefined;
let handles = new Map<string, Handle>();
/** Object ids by the index the event loop sends (see sign-batch.ts). */
const objectIds: string[] = [];

function reset(): void {
  if (session) {
    try {
      mod.C_CloseSession(session);
    } catch {
      /* already gone */
    }
  }
  session = undefined;
  handles = new Map();
}

function openSession(): Handle {
  if (session) return session;
  const slot = findSlotByLabel(mod, tokenLabel);
  if (!slot) throw Object.assign(new Error("token not present"), { code: 0xe0 });
  session = mod.C_OpenSession(slot, pkcs11js.CKF_SERIAL_SESSION | pkcs11js.CKF_RW_SESSION);
  return session;
}

function handleFor(s: Handle, objectId: string): Handle {
  const cached = handles.get(objectId);
  if (cached) return cached;
  const handle = signingHandle(mod, s, objectId);
  if (!handle) throw Object.assign(new Error(`secret object ${objectId} is not on the token`), { code: -1 });
  handles.set(objectId, handle);
  return handle;
}

function signOne(job: SignJob, errors: Record<number, string>): SignOutcome {
  const objectId = objectIds[job.keyIndex];
  if (objectId === undefined) {
    errors[job.id] = `unknown key index ${job.keyIndex}`;
    return { id: job.id, ckr: -1 };
  }
  for (let attempt = 0; ; attempt++) {
    try {
      const s = openSession();
      const out = Buffer.allocUnsafe(job.macBytes);
      mod.C_SignInit(s, { mechanism: job.mechanism }, handleFor(s, objectId));
      const sig = mod.C_Sign(s, job.data.byteLength === 0 ? EMPTY : Buffer.from(job.data.buffer, job.data.byteOffset, job.data.byteLength), out);
      return { id: job.id, signature: sig };
    } catch (e) {
      const code = ckrOf(e) ?? -1;
      if (attempt === 0 && STALE.has(code)) {
        handles.delete(objectId);
        continue;
      }
      // Lost session or login, or an operation possibly left active: start over with a new session.
      reset();
      errors[job.id] = e instanceof Error ? e.message : String(e);
      return { id: job.id, ckr: code };
    }
  }
}

/** A zero-length view of a real allocation: an empty Buffer reaches C_Sign as NULL. */
const EMPTY = Buffer.alloc(1).subarray(0, 0);

parentPort!.on("message", (msg: ToSigner) => {
  if (msg.type === "reset") return reset();
  if (msg.type === "key") {
    objectIds[msg.index] = msg.objectId;
    return;
  }
  const errors: Record<number, string> = {};
  const outcomes = decodeJobs(msg.batch).map((job) => signOne(job, errors));
  const batch = encodeOutcomes(outcomes);
  const reply: FromSigner = Object.keys(errors).length > 0 ? { batch, errors } : { batch };
  parentPort!.postMessage(reply, [batch]);
});
