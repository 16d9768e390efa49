/**
 * A PostgreSQL URL carries a secret when it has a password: custos names a database by its
 * redacted form only (logs, errors, metrics), and hands the URL to a child process or thread in
 * memory or the environment, never in argv.
 */

/** `url` with any password replaced by "***" (a string that does not parse as a URL is withheld whole). */
export function redactPostgresUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = "***";
    // Query parameters may carry one too (?password=…, sslpassword, an sslkey path is harmless but short).
    for (const k of [...u.searchParams.keys()]) if (/pass/i.test(k)) u.searchParams.set(k, "***");
    return u.toString();
  } catch {
    return "(an unparsable PostgreSQL URL)";
  }
}

/** Whether `url` is a postgres:// or postgresql:// URL. */
export function isPostgresUrl(url: string): boolean {
  try {
    const p = new URL(url).protocol;
    return p === "postgres:" || p === "postgresql:";
  } catch {
    return false;
  }
}
