import assert from "node:assert/strict";
import { join } from "node:path";
import type { Page } from "playwright-core";
import { REPO } from "./harness.js";

/** Where the browser tests put their screenshots (git-ignored). */
export const CONSOLE_SHOTS = join(REPO, "test-artifacts/console");

/** The widths every console page is looked at: a laptop and a phone. */
export const WIDTHS = [1280, 390] as const;

/** Elements whose right edge lies beyond the viewport (tag#id.class and the overflow in px), at most 10. */
export async function horizontalOverflow(page: Page): Promise<string[]> {
  return page.evaluate(() => {
    const width = document.documentElement.clientWidth;
    const out: string[] = [];
    if (document.documentElement.scrollWidth > width) out.push(`document scrollWidth ${document.documentElement.scrollWidth} > ${width}`);
    for (const el of Array.from(document.body.querySelectorAll("*"))) {
      const r = el.getBoundingClientRect();
      if (r.width > 0 && r.right > width + 0.5 && out.length < 10) {
        const classes = el.className ? `.${String(el.className).replace(/ +/g, ".")}` : "";
        out.push(`${el.tagName.toLowerCase()}${el.id ? `#${el.id}` : ""}${classes} +${Math.round(r.right - width)}px`);
      }
    }
    return out;
  });
}

/** Elements matching `selector` whose text runs over more than one line (their text, at most 10). */
export async function wrappedText(page: Page, selector: string): Promise<string[]> {
  return page.evaluate((sel) => {
    const out: string[] = [];
    for (const el of Array.from(document.querySelectorAll(sel))) {
      const range = document.createRange();
      range.selectNodeContents(el);
      const tops = new Set(
        Array.from(range.getClientRects())
          .filter((r) => r.width > 0)
          .map((r) => Math.round(r.top)),
      );
      if (tops.size > 1 && out.length < 10) out.push((el.textContent ?? "").trim());
    }
    return out;
  }, selector);
}

/**
 * Screenshots the current page at each width (NAME-1280.png, NAME-390.png), asserting at
 * each that nothing sticks out of the viewport sideways; leaves the page at 1280 px.
 */
export async function shootBothWidths(page: Page, name: string): Promise<void> {
  const height = page.viewportSize()?.height ?? 900;
  for (const width of WIDTHS) {
    await page.setViewportSize({ width, height });
    await page.screenshot({ path: join(CONSOLE_SHOTS, `${name}-${width}.png`), fullPage: true });
    assert.deepEqual(await horizontalOverflow(page), [], `${name} at ${width} px: nothing overflows the viewport horizontally`);
  }
  await page.setViewportSize({ width: WIDTHS[0], height });
}
