import { CustosError } from "../../errors.js";

/**
 * Serialises work on SQLite's one shared connection around `SqliteStore.transaction()`.
 * better-sqlite3 is synchronous, but a transaction's callback awaits between its statements:
 * anything else run on the connection meanwhile would land inside the open BEGIN…COMMIT (and
 * be rolled back with it, or read what may never commit). So while a transaction is open or
 * queued, every other call waits its turn, in order; when none is, a call runs at once (its
 * synchronous statements cannot interleave with anything).
 */
export class WriteGate {
  private tail: Promise<void> = Promise.resolve();
  private queued = 0;

  /** Nothing holds or waits for the connection. */
  get idle(): boolean {
    return this.queued === 0;
  }

  /** Runs `fn` alone on the connection, after everything queued before it. */
  exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const before = this.tail;
    let release!: () => void;
    this.tail = new Promise<void>((resolve) => (release = resolve));
    this.queued++;
    return before.then(fn).finally(() => {
      this.queued--;
      release();
    });
  }

  /**
   * `table` whose every method waits for the gate when it is busy. Used for the tables the
   * store hands out between transactions.
   */
  guard<T extends object>(table: T): T {
    return new Proxy(table, {
      get: (target, prop, receiver) => {
        const value: unknown = Reflect.get(target, prop, receiver);
        if (typeof value !== "function") return value;
        return (...args: unknown[]) => {
          const call = () => (value as (...a: unknown[]) => Promise<unknown>).apply(target, args);
          return this.idle ? call() : this.exclusive(call);
        };
      },
    });
  }
}

/**
 * `table` usable only while `open()` says so: a transaction's tables handed out of its
 * callback and used after it ended would write outside any transaction.
 */
export function scoped<T extends object>(table: T, open: () => boolean): T {
  return new Proxy(table, {
    get: (target, prop, receiver) => {
      const value: unknown = Reflect.get(target, prop, receiver);
      if (typeof value !== "function") return value;
      return (...args: unknown[]) => {
        if (!open()) return Promise.reject(new CustosError("INTERNAL", "a transaction's tables were used after it ended (this is a bug)"));
        return (value as (...a: unknown[]) => Promise<unknown>).apply(target, args);
      };
    },
  });
}
