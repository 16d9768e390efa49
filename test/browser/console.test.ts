import assert from "node:assert/strict";
import { mkdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { chromium, type Browser, type BrowserContext, type CDPSession, type Page } from "playwright-core";
import {
  REPO,
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

/**
 * The officer console in real Chromium (Debian's package, driven by playwright-core; no browser
 * is downloaded) with Chromium's virtual WebAuthn authenticator: an officer enrolls with a
 * token from the CLI, registers a passkey (an add_credential proposal two other officers
 * approve by CLI), logs in with it, sees a pending rotation and approves it in the browser; a
 * second officer approves by CLI and the rotation executes. Screenshots go to
 * test-artifacts/console/.
 */

const CHROMIUM = "/usr/bin/chromium";
const KEY = "console-key";
const SHOTS = join(REPO, "test-artifacts/console");

describe("officer console in Chromium with a virtual passkey", () => {
  const dir = tempDir("custos-console-");
  let service: ChildService;
  let alice: CliOfficer, bob: CliOfficer, carol: CliOfficer;
  let browser: Browser, context: BrowserContext, page: Page, cdp: CDPSession;
  let consoleUrl: string;
  let authenticatorId: string;
  let fingerprint: string;
  let origin: string;

  const shot = (name: string) => page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
  const proposeAs = async (officer: CliOfficer, args: string[], input?: string) => ok(await runCli([...args, ...officerArgs(dir, officer)], input === undefined ? {} : { input }), args.join(" "));
  const approve = async (id: string, officer: CliOfficer) => ok(await approveAs(dir, id, officer), `approve ${id} as ${officer.name}`);

  before(async () => {
    mkdirSync(SHOTS, { recursive: true });
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
    const imported = await proposeAs(carol, ["key", "import", "--key", KEY, "--raw", "--fingerprint", fingerprint], "console-secret-one-0123456789abcdef0123456789");
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
    const token = ok(await runCli(["officer", "enroll-token", "--officer", "alice", "--officer-key", alice.keyPath, "--passphrase-file", alice.passphraseFile, "--data-dir", dir]), "enroll-token");
    await page.goto(`${origin}/console/enroll`);
    await page.fill("#token", token);
    await Promise.all([page.waitForNavigation(), page.click("#enroll")]);
    assert.equal(page.url(), `${origin}/console/register`, (await page.textContent("main")) ?? "");
    await page.fill("#label", "alice's laptop");
    await page.click("#register");
    await page.waitForFunction(() => (document.getElementById("proposal-id")?.textContent ?? "").length > 0, undefined, { timeout: 20_000 });
    registration = (await page.textContent("#proposal-id"))!.trim();
    assert.match(await page.textContent("#status") ?? "", /add_credential.*pending, 2 more approval/);
    await shot("register");
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
    const rotation = await proposeAs(carol, ["key", "rotate", "--key", KEY, "--grace", "1h", "--fingerprint", fingerprint], "console-secret-two-fedcba9876543210fedcba9876");
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
    await page.waitForFunction((id) => document.getElementById(`p-${id}`)?.getAttribute("data-state") !== "pending" || /Recorded/.test(document.getElementById("status")?.textContent ?? ""), rotation, { timeout: 20_000 });
    assert.match((await page.textContent("#status")) ?? "", /Recorded: proposal .* is pending \(1 more approval/);
    await shot("approved");

    assert.equal(await approve(rotation, bob), "executed", "a console approval and a CLI approval make the 2-of-3 quorum");
    const events = await auditEvents(dir);
    const votes = events.filter((e) => e.kind === "proposal.approve" && e.outcome === "ok" && e.details?.proposal === rotation);
    assert.deepEqual(votes.map((e) => [e.actor, e.details?.credential]), [["alice", "passkey"], ["bob", "ed25519"]]);
  });

  it("shows the new version on the keys page, and the clients and audit pages", async () => {
    await page.goto(`${origin}/console/keys`);
    const row = page.locator(`[id="key-${KEY}"]`);
    assert.equal(await row.getAttribute("data-active-version"), "2");
    assert.match((await row.locator(".versions").textContent()) ?? "", /v1 retiring.*v2 active/s);
    await shot("keys");
    await page.goto(`${origin}/console/clients`);
    await shot("clients");
    await page.goto(`${origin}/console/audit?kind=proposal.approve`);
    assert.match((await page.textContent("#chain")) ?? "", /Hash chain verified/);
    assert.ok((await page.locator('#audit tr[data-kind="proposal.approve"]').count()) >= 2);
    await shot("audit");
  });

  it("lists alice's passkey on the officers page, and freezes a key at once with one officer", async () => {
    await page.goto(`${origin}/console/officers`);
    assert.match((await page.locator("#officer-alice .passkey").textContent()) ?? "", /alice's laptop/);
    await shot("officers");
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
