import assert from "node:assert/strict";
import { mkdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { chromium, type Browser, type BrowserContext, type CDPSession, type Page } from "playwright-core";
import {
  approveAs,
  auditEvents,
  createOfficer,
  officerArgs,
  runCli,
  spawnService,
  tempDir,
  writeConfiguredDeployment,
  type ChildService,
  type CliOfficer,
  cliOk as ok,
} from "../helpers/harness.js";
import { CONSOLE_SHOTS, shootBothWidths, wrappedText } from "../helpers/console-layout.js";
import { signerClient, unary } from "../../src/client/connection.js";
import { SignatureEncoding } from "../../src/gen/custos/v1/signer.js";

/**
 * The officer console in real Chromium (Debian's package, driven by playwright-core; no browser
 * is downloaded) with Chromium's virtual WebAuthn authenticator: an officer enrolls with a
 * token from the CLI, registers a passkey (an add_credential proposal two other officers
 * approve by CLI), logs in with it, sees a pending rotation and approves it in the browser; a
 * second officer approves by CLI and the rotation executes. Every page is screenshotted at
 * 1280 and 390 px into test-artifacts/console/, and its layout checked where it can fail.
 */

const CHROMIUM = "/usr/bin/chromium";
const KEY = "console-key";

describe("officer console in Chromium with a virtual passkey", () => {
  const dir = tempDir("custos-console-");
  let service: ChildService;
  let alice: CliOfficer, bob: CliOfficer, carol: CliOfficer;
  let browser: Browser, context: BrowserContext, page: Page, cdp: CDPSession;
  let consoleUrl: string;
  let authenticatorId: string;
  let fingerprint: string;
  let origin: string;

  const shot = (name: string) => shootBothWidths(page, name);
  const proposeAs = async (officer: CliOfficer, args: string[], input?: string) =>
    ok(await runCli([...args, ...officerArgs(dir, officer)], input === undefined ? {} : { input }), args.join(" "));
  const approve = async (id: string, officer: CliOfficer) => ok(await approveAs(dir, id, officer), `approve ${id} as ${officer.name}`);

  before(async () => {
    mkdirSync(CONSOLE_SHOTS, { recursive: true });
    const deployment = await writeConfiguredDeployment(dir, { audit: { flushIntervalMs: 50 } });
    fingerprint = deployment.fingerprint;
    const pki = deployment.pki;
    service = await spawnService(dir);
    assert.ok(service.conn.console, "connection.json names the console");
    consoleUrl = service.conn.console!;
    origin = new URL(consoleUrl).origin;
    const keys = join(dir, "officers");
    mkdirSync(keys, { mode: 0o700 });
    [alice, bob, carol] = [await createOfficer(dir, "alice", keys), await createOfficer(dir, "bob", keys), await createOfficer(dir, "carol", keys)];
    ok(
      await runCli([
        "governance",
        "init",
        ...["--data-dir", dir, "--cert", join(pki, "ops.crt"), "--cert-key", join(pki, "ops.key")],
        ...[alice, bob, carol].flatMap((o) => ["--officer", `${o.name}=${o.publicKeyPath}`]),
        "--threshold",
        "2",
      ]),
      "governance init",
    );
    const imported = await proposeAs(
      carol,
      ["key", "import", "--key", KEY, "--raw", "--fingerprint", fingerprint],
      "console-secret-one-0123456789abcdef0123456789",
    );
    await approve(imported, alice);
    assert.equal(await approve(imported, bob), "executed");

    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: process.getuid?.() === 0 ? ["--no-sandbox"] : [] });
    // The dev CA is not in Chromium's trust store; the test trusts the server it just started.
    context = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1280, height: 900 } });
    page = await context.newPage();
    cdp = await context.newCDPSession(page);
    await cdp.send("WebAuthn.enable");
    const added = await cdp.send("WebAuthn.addVirtualAuthenticator", {
      options: { protocol: "ctap2", transport: "internal", hasResidentKey: true, hasUserVerification: true, isUserVerified: true },
    });
    authenticatorId = added.authenticatorId;
  });

  after(async () => {
    await browser?.close();
    await service?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it("serves the console over TLS with a strict CSP", async () => {
    assert.match(consoleUrl, /^https:\/\/localhost:\d+\/console$/);
    const res = await page.goto(`${origin}/console/login`);
    assert.equal(res?.status(), 200);
    const headers = res!.headers();
    assert.match(headers["content-security-policy"] ?? "", /^default-src 'none'; script-src 'self'; style-src 'self'/);
    await shot("login");
  });

  let registration = "";

  it("enrolls alice with a CLI token and registers a passkey: an add_credential proposal", async () => {
    const token = ok(
      await runCli([
        "officer",
        "enroll-token",
        "--officer",
        "alice",
        "--officer-key",
        alice.keyPath,
        "--passphrase-file",
        alice.passphraseFile,
        "--data-dir",
        dir,
      ]),
      "enroll-token",
    );
    await page.goto(`${origin}/console/enroll`);
    await page.fill("#token", token);
    await Promise.all([page.waitForNavigation(), page.click("#enroll")]);
    assert.equal(page.url(), `${origin}/console/register`, (await page.textContent("main")) ?? "");
    assert.equal(await page.textContent("#passkey-count"), "0");
    assert.equal(await page.textContent("#passkey-pending"), "0");
    await shot("register-before");
    await page.fill("#label", "alice's laptop");
    await page.click("#register");
    await page.waitForFunction(() => (document.getElementById("proposal-id")?.textContent ?? "").length > 0, undefined, { timeout: 20_000 });
    registration = (await page.textContent("#proposal-id"))!.trim();
    assert.match((await page.textContent("#status")) ?? "", /add_credential.*pending, 2 more approval/);
    // The page shows the state after the registration: one passkey awaiting the quorum, and no second click.
    assert.equal(await page.textContent("#passkey-count"), "0");
    assert.equal(await page.textContent("#passkey-pending"), "1");
    assert.equal(await page.isDisabled("#register"), true);
    await shot("register");
    await page.reload();
    assert.equal(await page.getAttribute("#passkey-state", "data-pending"), "1");
    assert.match((await page.textContent("#pending-passkeys")) ?? "", new RegExp(registration));
    const { credentials } = await cdp.send("WebAuthn.getCredentials", { authenticatorId });
    assert.equal(credentials.length, 1, "the virtual authenticator holds one resident credential");
  });

  it("cannot log in with the passkey until the quorum approves it; then it can", async () => {
    await page.goto(`${origin}/console/login`);
    await page.click("#login");
    await page.waitForFunction(() => document.getElementById("status")?.className === "bad", undefined, { timeout: 20_000 });
    assert.match((await page.textContent("#status")) ?? "", /UNAUTHENTICATED/);

    const shown = ok(await runCli(["proposal", "show", registration, ...officerArgs(dir, bob)]), "proposal show");
    assert.match(shown, /digest/);
    assert.equal(await approve(registration, bob), "pending");
    assert.equal(await approve(registration, carol), "executed");

    await page.goto(`${origin}/console/login`);
    await Promise.all([page.waitForURL(`${origin}/console`), page.click("#login")]);
    assert.match((await page.textContent("header .who")) ?? "", /alice/);
  });

  it("shows a pending rotation with its diff and digest; alice approves it with her passkey, bob by CLI; it executes", async () => {
    const rotation = await proposeAs(
      carol,
      ["key", "rotate", "--key", KEY, "--grace", "1h", "--fingerprint", fingerprint],
      "console-secret-two-fedcba9876543210fedcba9876",
    );
    const digest = /digest\s+([0-9a-f]{64})/.exec(ok(await runCli(["proposal", "show", rotation, ...officerArgs(dir, bob)]), "show"))?.[1];
    assert.ok(digest);
    await page.goto(`${origin}/console`);
    const card = page.locator(`#p-${rotation}`);
    assert.equal(await card.getAttribute("data-kind"), "rotate_key");
    const text = (await card.textContent()) ?? "";
    assert.match(text, new RegExp(`rotate key ${KEY}: v2 becomes active, v1 retiring`));
    assert.match(text, /versions: v1 active → v2 active, v1 retiring/);
    assert.ok(text.includes(digest), "the page shows the digest the officer signs");
    await shot("proposals");

    await page.click(`#approve-${rotation}`);
    await page.waitForFunction(
      (id) =>
        document.getElementById(`p-${id}`)?.getAttribute("data-state") !== "pending" || /Recorded/.test(document.getElementById("status")?.textContent ?? ""),
      rotation,
      { timeout: 20_000 },
    );
    assert.match((await page.textContent("#status")) ?? "", /Recorded: proposal .* is pending \(1 more approval/);
    await shot("approved");

    assert.equal(await approve(rotation, bob), "executed", "a console approval and a CLI approval make the 2-of-3 quorum");
    const events = await auditEvents(dir);
    const votes = events.filter((e) => e.kind === "proposal.approve" && e.outcome === "ok" && e.details?.proposal === rotation);
    assert.deepEqual(
      votes.map((e) => [e.actor, e.details?.credential]),
      [
        ["alice", "passkey"],
        ["bob", "ed25519"],
      ],
    );
  });

  it("shows the new version on the keys page, and the clients and audit pages", async () => {
    await page.goto(`${origin}/console/keys`);
    const row = page.locator(`[id="key-${KEY}"]`);
    assert.equal(await row.getAttribute("data-active-version"), "2");
    assert.match((await row.locator(".versions").textContent()) ?? "", /v1 retiring.*v2 active/s);
    await shot("keys");
    assert.deepEqual(await wrappedText(page, "button, .nowrap, td code, th"), [], "keys at 1280 px: no label, date or identity broken over lines");
    await page.goto(`${origin}/console/clients`);
    await shot("clients");
    assert.deepEqual(await wrappedText(page, "button, .nowrap, td code, th"), [], "clients at 1280 px: no label, date or identity broken over lines");
    await page.goto(`${origin}/console/audit?kind=proposal.approve`);
    assert.match((await page.textContent("#chain")) ?? "", /Hash chain verified/);
    assert.ok((await page.locator('#audit tr[data-kind="proposal.approve"]').count()) >= 2);
    await shot("audit");
  });

  it("pages the audit log: 101 new events fit in bounded pages with a narrow outcome column, and a page stays put as events arrive", async () => {
    await page.goto(`${origin}/console/audit`);
    // Signatures by a granted trading client: each one is an audit event of its own (sign, allowed).
    const engine = "spiffe://custos/engine/alpha";
    for (const args of [
      ["client", "add", engine, "--cidr", "127.0.0.1/32"],
      ["client", "grant", engine, "--key", KEY],
    ]) {
      const id = await proposeAs(carol, args);
      await approve(id, alice);
      assert.equal(await approve(id, bob), "executed");
    }
    const pki = join(dir, "pki");
    const signer = signerClient(
      service.conn.grpc,
      { caPath: join(pki, "ca.crt"), certPath: join(pki, "alpha.crt"), keyPath: join(pki, "alpha.key") },
      service.conn.serverName,
    );
    /** Signs `n` payloads and waits until their (batched) audit events are in the database. */
    const signSome = async (n: number): Promise<number[]> => {
      const before = (await auditEvents(dir)).length;
      const versions: number[] = [];
      for (let i = 0; i < n; i++) {
        const res = await unary(signer, "sign", {
          keyId: KEY,
          version: 0,
          payload: Buffer.from(`console paging ${i}`),
          encoding: SignatureEncoding.SIGNATURE_ENCODING_RAW,
        });
        versions.push(res.keyVersion);
      }
      for (const deadline = Date.now() + 10_000; (await auditEvents(dir)).length < before + n; ) {
        assert.ok(Date.now() < deadline, "the signatures' audit events were not written within 10 s");
        await new Promise((r) => setTimeout(r, 50));
      }
      return versions;
    };
    assert.deepEqual(new Set(await signSome(101)), new Set([2]), "101 signatures by the active version");

    await page.goto(`${origin}/console/audit?size=200`);
    const rows = page.locator("#audit tbody tr");
    assert.ok((await rows.count()) >= 101, "one page holds all 101 events and more");
    await shot("audit-101");
    const height = await page.evaluate(() => document.documentElement.scrollHeight);
    const count = await rows.count();
    assert.ok(height < 600 + count * 60, `${count} events take ${height} px: at most about two lines per event`);
    const outcome = await page.locator("#audit th:nth-child(5)").boundingBox();
    const details = await page.locator("#audit th:nth-child(7)").boundingBox();
    assert.ok(outcome && outcome.width < 130, `the outcome column is ${outcome?.width} px wide`);
    assert.ok(details && details.width > 400, `the details column is ${details?.width} px wide`);
    assert.deepEqual(await wrappedText(page, "#audit .nowrap, #audit th"), [], "times and headings stay on one line");

    await page.goto(`${origin}/console/audit`);
    assert.equal(await rows.count(), 50, "50 events a page by default");
    await shot("audit-page-1");
    const seqsShown = () => rows.evaluateAll((trs) => trs.map((tr) => Number(tr.getAttribute("data-seq"))));
    const first = await seqsShown();
    await Promise.all([page.waitForURL(/before=/), page.locator(".pager a.older").first().click()]);
    const second = await seqsShown();
    assert.equal(second.length, 50);
    assert.equal(second[0], first[49]! - 1, "the older page starts right below the newest page");
    const secondUrl = page.url();
    await shot("audit-page-2");
    assert.deepEqual(new Set(await signSome(7)), new Set([2]));
    await page.goto(secondUrl);
    assert.deepEqual(await seqsShown(), second, "new events do not move an older page");
    await Promise.all([page.waitForURL(/after=/), page.locator(".pager a.newer").first().click()]);
    assert.deepEqual(await seqsShown(), first, "newer leads back to the page it came from");
    await page.locator(".pager a.newest").first().click();
    await page.waitForURL(/audit\?size=50$/);
    assert.equal((await seqsShown())[0], first[0]! + 7, "the newest page shows the 7 new events on top");
    signer.close();
  });
  it("lists alice's passkey on the officers page, and freezes a key at once with one officer", async () => {
    await page.goto(`${origin}/console/officers`);
    assert.match((await page.locator("#officer-alice .passkey").textContent()) ?? "", /alice's laptop/);
    await shot("officers");
    assert.deepEqual(await wrappedText(page, "button, .nowrap, td code, th"), [], "officers at 1280 px: no label, date or identity broken over lines");
    await page.goto(`${origin}/console/keys`);
    const row = page.locator(`[id="key-${KEY}"]`);
    await row.locator('input[name="reason"]').fill("browser test freeze");
    await Promise.all([page.waitForURL(`${origin}/console/keys?done=freeze`), row.locator("button.freeze").click()]);
    assert.match((await page.locator(`[id="key-${KEY}"]`).textContent()) ?? "", /frozen\s+browser test freeze \(console\)/);
    const list = await runCli(["key", "list", "--json", ...officerArgs(dir, bob)]);
    assert.equal(list.code, 0, list.stderr);
    const listed = JSON.parse(list.stdout) as Array<{ keyId: string; frozen: boolean }>;
    assert.equal(listed.find((k) => k.keyId === KEY)?.frozen, true, "the CLI sees the freeze");
    await shot("keys-frozen");
  });
});
