/**
 * Progress of long CLI work on stderr (stdout stays the command's result): on a terminal one
 * line redrawn at most 10 times a second; otherwise (logs, CI) a line every 5 seconds. Work
 * that ends within the first second prints nothing.
 */
export class Progress {
  private readonly started: number;
  private lastDrawn = 0;
  private drawn = false;

  constructor(
    private readonly what: string,
    private readonly total: number,
    private readonly stream: Pick<NodeJS.WriteStream, "write" | "isTTY"> = process.stderr,
    private readonly clock: () => number = Date.now,
  ) {
    this.started = clock();
  }

  update(done: number): void {
    const now = this.clock();
    const tty = this.stream.isTTY === true;
    if (now - this.started < 1_000 || now - this.lastDrawn < (tty ? 100 : 5_000)) return;
    this.lastDrawn = now;
    const rate = done / ((now - this.started) / 1000);
    const left = rate > 0 && this.total > done ? `, about ${Math.ceil((this.total - done) / rate)} s left` : "";
    const line = `${this.what}: ${done.toLocaleString("en")} of ${this.total.toLocaleString("en")} (${Math.round(rate).toLocaleString("en")}/s${left})`;
    this.stream.write(tty ? `\r${line}\x1b[K` : `${line}\n`);
    this.drawn = true;
  }

  /** Ends a redrawn terminal line, so what follows starts on its own. */
  done(): void {
    if (this.drawn && this.stream.isTTY) this.stream.write("\n");
  }
}
