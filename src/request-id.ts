/*
 * The one request-id scheme: every refused or failed call, on any service, is logged and answered
 * (google.rpc.ErrorInfo metadata.requestId) under an id of this form.
 */

let counter = 0;
const prefix = `r${process.pid.toString(36)}-`;

/** A process-unique, short id with no secret in it: "r" + pid + "-" + a counter, base 36. */
export function nextRequestId(): string {
  return prefix + (++counter).toString(36);
}
