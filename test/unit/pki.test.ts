import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { once } from "node:events";
import type { AddressInfo } from "node:net";
import tls from "node:tls";
import {
  createDevCa,
  identityFromPeerCertificate,
  issueClientCert,
  issueServerCert,
  loadIssued,
  peerAddressIp,
  writeIssued,
  type IssuedCert,
} from "../../src/pki/index.js";

const CLIENT_URI = "spiffe://custos/engine/alpha";

interface ServerSeen {
  authorized: boolean;
  identity: string | null;
  remoteIp: string | null;
}

/** Starts an mTLS (TLS 1.3 only) server on 127.0.0.1 that records what it saw of each peer. */
async function startServer(ca: IssuedCert, server: IssuedCert) {
  const seen: ServerSeen[] = [];
  const rejected: (string | undefined)[] = []; // authorizationError of refused handshakes
  const srv = tls.createServer(
    {
      key: server.keyPem,
      cert: server.certPem,
      ca: [ca.certPem],
      requestCert: true,
      rejectUnauthorized: true,
      minVersion: "TLSv1.3",
    },
    (socket) => {
      seen.push({
        authorized: socket.authorized,
        identity: identityFromPeerCertificate(socket.getPeerCertificate()),
        remoteIp: peerAddressIp(socket.remoteAddress),
      });
      socket.end("ok");
    },
  );
  srv.on("tlsClientError", (_err, socket) => rejected.push(socket.authorizationError?.toString()));
  srv.listen(0, "127.0.0.1");
  await once(srv, "listening");
  return { srv, seen, rejected, port: (srv.address() as AddressInfo).port };
}

/** Connects with a client cert; resolves on close with the server's reply and any client-side error. */
function connect(port: number, ca: IssuedCert, client: IssuedCert) {
  return new Promise<{ data: string; error?: Error | undefined; peer?: tls.PeerCertificate | undefined }>((resolve) => {
    const sock = tls.connect({
      host: "127.0.0.1",
      port,
      servername: "localhost",
      ca: [ca.certPem],
      key: client.keyPem,
      cert: client.certPem,
      minVersion: "TLSv1.3",
    });
    let data = "";
    let peer: tls.PeerCertificate | undefined;
    let error: Error | undefined;
    sock.on("secureConnect", () => (peer = sock.getPeerCertificate()));
    sock.on("data", (d: Buffer) => (data += d.toString()));
    sock.on("error", (err) => (error = err));
    sock.on("close", () => resolve({ data, error, peer }));
  });
}

describe("dev PKI over real mutual TLS", () => {
  let ca: IssuedCert;
  let server: IssuedCert;
  let client: IssuedCert;
  let tmp: string;

  before(async () => {
    ca = await createDevCa();
    server = await issueServerCert(ca, {
      dnsNames: ["localhost"],
      ipAddresses: ["127.0.0.1", "::1"],
    });
    client = await issueClientCert(ca, { name: "engine-alpha", uri: CLIENT_URI });
    tmp = await mkdtemp(join(tmpdir(), "custos-pki-"));
  });
  after(async () => {
    await rm(tmp, { recursive: true, force: true });
  });

  it("produces PEM certs and PKCS#8 keys", () => {
    for (const c of [ca, server, client]) {
      assert.match(c.certPem, /^-----BEGIN CERTIFICATE-----\r?\n/);
      assert.match(c.keyPem, /^-----BEGIN PRIVATE KEY-----\r?\n/);
    }
  });

  it("accepts a client cert from the CA and sees its URI identity", async () => {
    const { srv, seen, port } = await startServer(ca, server);
    try {
      const res = await connect(port, ca, client);
      assert.equal(res.error, undefined);
      assert.equal(res.data, "ok");
      assert.deepEqual(seen, [{ authorized: true, identity: CLIENT_URI, remoteIp: "127.0.0.1" }]);
      // The server cert must also verify for its IP SANs, not just "localhost".
      assert.ok(res.peer);
      for (const host of ["localhost", "127.0.0.1", "::1"]) {
        assert.equal(tls.checkServerIdentity(host, res.peer), undefined, host);
      }
    } finally {
      srv.close();
    }
  });

  it("rejects a client cert issued by a different CA", async () => {
    const otherCa = await createDevCa("rogue CA");
    const rogue = await issueClientCert(otherCa, { name: "rogue", uri: "spiffe://custos/engine/rogue" });
    const { srv, seen, rejected, port } = await startServer(ca, server);
    try {
      const res = await connect(port, ca, rogue);
      // TLS 1.3: the client finishes its side of the handshake before the server
      // checks its cert, and Node's server then just destroys the socket (no alert).
      // So the client sees a close without the server's reply, not necessarily an error.
      assert.equal(res.data, "", `client got data; error=${String(res.error)}`);
      assert.equal(seen.length, 0);
      assert.deepEqual(rejected, ["UNABLE_TO_VERIFY_LEAF_SIGNATURE"]);
    } finally {
      srv.close();
    }
  });

  it("writes the key 0600 and reads the pair back", async () => {
    const { certPath, keyPath } = await writeIssued(tmp, "client", client);
    assert.equal((await stat(keyPath)).mode & 0o777, 0o600);
    assert.equal((await stat(certPath)).mode & 0o777, 0o644);
    assert.deepEqual(await loadIssued(tmp, "client"), client);
  });
});

describe("identityFromPeerCertificate", () => {
  it("returns the first URI SAN", () => {
    const cert = { subject: { CN: "x" }, subjectaltname: `DNS:a, URI:${CLIENT_URI}, URI:spiffe://b` };
    assert.equal(identityFromPeerCertificate(cert), CLIENT_URI);
  });

  it("decodes a quoted URI SAN containing a comma", () => {
    const cert = { subjectaltname: 'DNS:"a,b", URI:"spiffe://custos/x,y", URI:spiffe://z' };
    assert.equal(identityFromPeerCertificate(cert), "spiffe://custos/x,y");
  });

  it("does not mistake a quoted value containing 'URI:' for a URI entry", () => {
    const cert = { subject: { CN: "eve" }, subjectaltname: 'DNS:"x, URI:spiffe://admin"' };
    assert.equal(identityFromPeerCertificate(cert), "cn:eve");
  });

  it("falls back to the (first) CN", () => {
    assert.equal(identityFromPeerCertificate({ subject: { CN: "alpha" }, subjectaltname: "DNS:a" }), "cn:alpha");
    assert.equal(identityFromPeerCertificate({ subject: { CN: ["one", "two"] } }), "cn:one");
  });

  it("returns null without any identity or for malformed SANs", () => {
    assert.equal(identityFromPeerCertificate(undefined), null);
    assert.equal(identityFromPeerCertificate({}), null);
    assert.equal(identityFromPeerCertificate({ subject: {}, subjectaltname: "" }), null);
    assert.equal(identityFromPeerCertificate({ subject: { CN: "x" }, subjectaltname: 'URI:"unterminated' }), null);
  });
});

describe("peerAddressIp", () => {
  it("strips the IPv4-mapped IPv6 prefix", () => {
    assert.equal(peerAddressIp("::ffff:127.0.0.1"), "127.0.0.1");
    assert.equal(peerAddressIp("::FFFF:10.1.2.3"), "10.1.2.3");
  });

  it("leaves other addresses alone", () => {
    assert.equal(peerAddressIp("127.0.0.1"), "127.0.0.1");
    assert.equal(peerAddressIp("::1"), "::1");
    assert.equal(peerAddressIp("::ffff:abcd"), "::ffff:abcd");
  });

  it("returns null for undefined or empty", () => {
    assert.equal(peerAddressIp(undefined), null);
    assert.equal(peerAddressIp(""), null);
  });
});
