/**
 * Reads an exchange secret without it ever touching argv, the environment or a file:
 * from stdin when piped, else from a hidden prompt on the terminal. Returns a Buffer the
 * caller zero-fills; intermediate chunks are zero-filled here.
 */
export async function readSecret(prompt: string): Promise<Buffer> {
  const stdin = process.stdin;
  const chunks: Buffer[] = [];
  try {
    if (stdin.isTTY) {
      process.stderr.write(prompt);
      stdin.setRawMode(true);
      stdin.resume();
      await new Promise<void>((resolve, reject) => {
        const onData = (data: Buffer) => {
          for (const byte of data) {
            if (byte === 0x0d || byte === 0x0a) return finish();
            if (byte === 0x03) return finish(new Error("aborted"));
            if (byte === 0x7f || byte === 0x08) {
              const last = chunks.pop();
              last?.fill(0);
              continue;
            }
            chunks.push(Buffer.from([byte]));
          }
          data.fill(0);
        };
        const finish = (err?: Error) => {
          stdin.off("data", onData);
          stdin.setRawMode(false);
          stdin.pause();
          process.stderr.write("\n");
          if (err) reject(err);
          else resolve();
        };
        stdin.on("data", onData);
      });
    } else {
      for await (const chunk of stdin) chunks.push(chunk as Buffer);
    }
    let secret = Buffer.concat(chunks);
    // One trailing newline (echo "…" | custos key import) is not part of the secret.
    let end = secret.length;
    if (end > 0 && secret[end - 1] === 0x0a) end--;
    if (end > 0 && secret[end - 1] === 0x0d) end--;
    if (end !== secret.length) {
      const trimmed = Buffer.from(secret.subarray(0, end));
      secret.fill(0);
      secret = trimmed;
    }
    if (secret.length === 0) throw new Error("no secret given on stdin or at the prompt");
    return secret;
  } finally {
    for (const c of chunks) c.fill(0);
  }
}
