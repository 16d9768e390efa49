/** Dev PKI (CA + mTLS leaf certificates) and peer identity parsing. */
export {
  createDevCa,
  issueClientCert,
  issueServerCert,
  loadIssued,
  writeIssued,
  type IssuedCert,
} from "./dev-ca.js";
export { identityFromPeerCertificate, peerAddressIp, type PeerCertificateLike } from "./identity.js";
export {
  LOOPBACK_SERVER_NAMES,
  assertServerCertNames,
  issueDevServerCert,
  missingServerNames,
  parseServerNameList,
  serverCertNames,
  validateServerNames,
} from "./server-names.js";
