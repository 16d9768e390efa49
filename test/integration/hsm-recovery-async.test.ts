import { defineRecoveryScenario } from "../helpers/hsm-chaos.js";

/**
 * Async dispatch: C_SignAsync on 4 pooled sessions, so faults land while operations are in
 * flight on libuv worker threads (sessions closed under a running C_Sign).
 */
defineRecoveryScenario("async", (c) => {
  c.hsm.sessions = 4;
});
