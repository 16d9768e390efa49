import assert from "node:assert/strict";
import { mkdirSync, rmSync } from "node:fs";
import { after, before, describe, it } from "node:test";
import { chromium, type Browser, type Page } from "playwright-core";
import { CONSOLE_SHOTS, shootBothWidths } from "../helpers/console-layout.js";
import { cliOk as ok, runCli, spawnService, tempDir, type ChildService } from "../helpers/harness.js";

/**
 * The embedded default's console in real Chromium: its dev governance (one local officer,
 * threshold 1) is announced on every page as loudly as in the terminal; the header names
 * the dev officer once; a passkey registered there counts as soon as the dev officer's CLI
 * approval executes it. Screenshots go to test-artifacts/console/dev-*.png.
 */

const CHROMIUM = "/usr/bin/chromium";

describe("embedded default's console in Chromium", () => {
  const dir = tempDir("custos-console-dev-");
  let service: ChildService;
  let browser: Browser, page: Page;
  let origin: string;

  before(async () => {
    mkdirSync(CONSOLE_SHOTS, { recursive: true });
    service = await spawnService(dir);
    assert.ok(service.conn.console, "connection.json names the console");
    origin = new URL(service.conn.console!).origin;
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: process.getuid?.() === 0 ? ["--no-sandbox"] : [] });
    const context = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1280, height: 900 } });
    page = await context.newPage();
    const cdp = await context.newCDPSession(page);
    await cdp.send("WebAuthn.enable");
    await cdp.send("WebAuthn.addVirtualAuthenticator", {
      options: { protocol: "ctap2", transport: "internal", hasResidentKey: true, hasUserVerification: true, isUserVerified: true },
    });
  });

  after(async () => {
    await browser?.close();
    await service?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it("shows the dev-governance banner on the login page at both widths", async () => {
    await page.goto(`${origin}/console/login`);
    assert.equal(await page.isVisible("#dev-banner"), true);
    assert.match((await page.textContent("#dev-banner")) ?? "", /DEV GOVERNANCE.*threshold 1/s);
    await shootBothWidths(page, "dev-login");
  });

  it("names the dev officer once, and counts a passkey once the dev officer's approval executes it", async () => {
    const token = ok(await runCli(["officer", "enroll-token", "--data-dir", dir]), "enroll-token");
    await page.goto(`${origin}/console/enroll`);
    assert.equal(await page.isVisible("#dev-banner"), true);
    await page.fill("#token", token);
    await Promise.all([page.waitForURL(`${origin}/console/register`), page.click("#enroll")]);
    assert.equal((await page.textContent("header .who"))?.trim(), "dev officer (embedded default) — enrollment only");
    assert.equal(await page.isVisible("#dev-banner"), true);
    await page.click("#register");
    await page.waitForFunction(() => (document.getElementById("proposal-id")?.textContent ?? "").length > 0, undefined, { timeout: 20_000 });
    const proposal = (await page.textContent("#proposal-id"))!.trim();
    assert.equal(await page.textContent("#passkey-pending"), "1");
    assert.equal(await page.isDisabled("#register"), true);
    assert.equal(ok(await runCli(["proposal", "approve", proposal, "--data-dir", dir]), "approve"), "executed");
    await page.reload();
    assert.equal(await page.textContent("#passkey-count"), "1");
    assert.equal(await page.textContent("#passkey-pending"), "0");
    await shootBothWidths(page, "dev-register");
  });
});
