import graphene from "graphene-pk11";
import { CustosError } from "../../errors.js";
import { CKR_USER_ALREADY_LOGGED_IN, ckrOf, toCustosError } from "./ckr.js";
import { findObjects, findSlotByLabel, loadModule, pkcs11js, type Handle, type Module } from "./module.js";
import { checkpointPublicKeySpki, ensureCheckpointKeyPair } from "./checkpoint-key.js";
import { wrappingKeyPairTemplates, wrappingKeyQuery } from "./templates.js";

/**
 * Token administration: creating a token and its wrapping key. Rare, slow operations
 * (RSA-3072 key generation takes ~a second), never on the sign path.
 */

/**
 * Initialises a new token on the first free slot (SoftHSM2 always offers one) with the
 * given label, SO PIN and user PIN, through C_InitToken/C_InitPIN — PINs never appear in
 * a command line. graphene's typed Slot/Session objects read better here than raw calls.
 */
export function createToken(modulePath: string, label: string, soPin: string, userPin: string): void {
  loadModule(modulePath); // initialise once per process, with OS locking
  const mod = graphene.Module.load(modulePath, "custos-token-admin");
  mod.initialize({ flags: pkcs11js.CKF_OS_LOCKING_OK }); // ignores "already initialised"
  if (findSlotByLabel(loadModule(modulePath), label)) throw new CustosError("KEY_EXISTS", `token "${label}" already exists`);
  const slots = mod.getSlots(true);
  let free: graphene.Slot | undefined;
  for (let i = 0; i < slots.length; i++) {
    const slot = slots.items(i);
    if ((slot.getToken().flags & graphene.TokenFlag.TOKEN_INITIALIZED) === 0) {
      free = slot;
      break;
    }
  }
  if (!free) throw new CustosError("HSM_ERROR", "no free slot to initialise a token in");
  // graphene's Slot.initToken trips over pkcs11js 2.1.7's void C_InitToken: call it directly.
  // PKCS#11 labels are 32 bytes padded with blanks; pkcs11js pads with NULs unless we do.
  loadModule(modulePath).C_InitToken(free.handle, soPin, label.padEnd(32, " "));
  // SoftHSM2 gives the initialised token a new slot id: look it up again by label.
  let slot: graphene.Slot | undefined;
  const after = mod.getSlots(true);
  for (let i = 0; i < after.length && !slot; i++) {
    if (
      after
        .items(i)
        .getToken()
        .label.replace(/[\s\0]+$/, "") === label
    )
      slot = after.items(i);
  }
  if (!slot) throw new CustosError("HSM_ERROR", `token "${label}" not found after initialisation`);
  const session = slot.open(graphene.SessionFlag.SERIAL_SESSION | graphene.SessionFlag.RW_SESSION);
  try {
    session.login(soPin, graphene.UserType.SO);
    session.initPin(userPin);
    session.logout();
  } finally {
    session.close();
  }
}

export interface WrappingKeyResult {
  created: boolean;
}

/** Creates the RSA-3072 wrapping key pair on the token, or adopts the existing one. */
export function ensureWrappingKey(modulePath: string, tokenLabel: string, userPin: string): WrappingKeyResult {
  return withUserSession(modulePath, tokenLabel, userPin, "hsm init", (mod, session) => {
    const havePrivate = findObjects(mod, session, wrappingKeyQuery("private")).length > 0;
    const havePublic = findObjects(mod, session, wrappingKeyQuery("public")).length > 0;
    if (havePrivate && havePublic) return { created: false };
    if (havePrivate !== havePublic) {
      throw new CustosError("HSM_ERROR", "token holds half a wrapping key pair; remove it before `custos hsm init`");
    }
    const t = wrappingKeyPairTemplates();
    mod.C_GenerateKeyPair(session, { mechanism: pkcs11js.CKM_RSA_PKCS_KEY_PAIR_GEN }, t.publicKey, t.privateKey);
    return { created: true };
  });
}

/**
 * Creates the audit checkpoint key pair (ECDSA P-256, sign-only, sensitive, never extractable)
 * on the token, or adopts the existing one. `custos hsm init` and `hsm create-token` call it;
 * so does every start of the service, which is how a token made before checkpoints gets one.
 */
export function ensureCheckpointKey(modulePath: string, tokenLabel: string, userPin: string): { created: boolean } {
  return withUserSession(modulePath, tokenLabel, userPin, "audit checkpoint key", (mod, session) => ensureCheckpointKeyPair(mod, session));
}

/** The checkpoint key's public half (DER SPKI) as the token holds it, or undefined if it has none. */
export function readCheckpointPublicKey(modulePath: string, tokenLabel: string, userPin: string): Buffer | undefined {
  return withUserSession(modulePath, tokenLabel, userPin, "read audit checkpoint key", (mod, session) => checkpointPublicKeySpki(mod, session));
}

/** Runs `fn` on a fresh logged-in R/W session of the token, closed afterwards. */
function withUserSession<T>(modulePath: string, tokenLabel: string, userPin: string, what: string, fn: (mod: Module, session: Handle) => T): T {
  const mod = loadModule(modulePath);
  const slot = findSlotByLabel(mod, tokenLabel);
  if (!slot) throw new CustosError("HSM_UNAVAILABLE", `no initialised token labelled "${tokenLabel}"`);
  const session = mod.C_OpenSession(slot, pkcs11js.CKF_SERIAL_SESSION | pkcs11js.CKF_RW_SESSION);
  try {
    try {
      mod.C_Login(session, pkcs11js.CKU_USER, userPin);
    } catch (e) {
      if (ckrOf(e) !== CKR_USER_ALREADY_LOGGED_IN) throw e;
    }
    return fn(mod, session);
  } catch (e) {
    throw toCustosError(e, what);
  } finally {
    mod.C_CloseSession(session);
  }
}
