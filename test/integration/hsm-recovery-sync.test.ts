import { defineRecoveryScenario } from "../helpers/hsm-chaos.js";

/** Sync dispatch: C_SignInit + C_Sign on the event loop; faults land between calls. */
defineRecoveryScenario("sync");
