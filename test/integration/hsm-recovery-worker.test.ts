import { defineRecoveryScenario } from "../helpers/hsm-chaos.js";

/** Worker dispatch (the SoftHSM2 default): signs run on a signing thread with its own session; faults land there too. */
defineRecoveryScenario("worker");
