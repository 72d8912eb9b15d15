// The bench's load generator (bench/loadgen.mjs, under Node) seen from Bun: one process, one JSON
// line per operation each way. Used by the harness (run.ts) and by the capacity tools
// (contained.ts: bench/capacity.ts and test/e2e/capacity.test.ts).
import type { Subprocess } from "bun";
import { join } from "node:path";

const ROOT = join(import.meta.dir, "..");

// A load generator must not outlive the process that started it.
const running = new Set<Subprocess>();
process.on("exit", () => {
  for (const p of running) p.kill("SIGKILL");
});

/** Reads a stream line by line in the background. */
export function lines(stream: ReadableStream<Uint8Array>, onLine: (line: string) => void): Promise<void> {
  return (async () => {
    const decoder = new TextDecoder();
    let buf = "";
    for await (const chunk of stream) {
      buf += decoder.decode(chunk, { stream: true });
      let nl: number;
      while ((nl = buf.indexOf("\n")) >= 0) {
        onLine(buf.slice(0, nl));
        buf = buf.slice(nl + 1);
      }
    }
  })();
}

/** The load generator: one Node process, JSON lines over stdin/stdout. */
export class LoadGen {
  private proc!: Subprocess<"pipe", "pipe", "inherit">;
  private next = 0;
  private waiting = new Map<number, { resolve: (v: any) => void; reject: (e: Error) => void }>();

  constructor() {
    this.start();
  }

  private start() {
    const proc = Bun.spawn(["node", join(ROOT, "bench/loadgen.mjs")], { cwd: ROOT, stdin: "pipe", stdout: "pipe", stderr: "inherit", env: { ...process.env } });
    this.proc = proc;
    running.add(proc);
    void lines(proc.stdout, (l) => {
      const { id, result, error } = JSON.parse(l);
      const w = this.waiting.get(id);
      this.waiting.delete(id);
      if (error) w?.reject(new Error(error));
      else w?.resolve(result);
    });
    void proc.exited.then((code) => {
      running.delete(proc);
      for (const w of this.waiting.values()) w.reject(new Error(`load generator exited (${code})`));
      this.waiting.clear();
    });
  }

  /** Runs one operation; past `timeoutMs` the load generator is replaced by a fresh one. */
  async call<T = any>(op: string, args: Record<string, unknown>, timeoutMs: number): Promise<T> {
    const id = this.next++;
    const answer = new Promise<T>((resolve, reject) => this.waiting.set(id, { resolve, reject }));
    this.proc.stdin.write(JSON.stringify({ id, op, args }) + "\n");
    this.proc.stdin.flush();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${op}: no answer in ${timeoutMs} ms`)), timeoutMs)));
    try {
      return await Promise.race([answer, timeout]);
    } catch (err) {
      if (String(err).includes("no answer")) {
        this.waiting.delete(id);
        this.proc.kill("SIGKILL");
        await this.proc.exited;
        this.start();
      }
      throw err;
    } finally {
      clearTimeout(timer);
    }
  }

  async close() {
    this.proc.stdin.end();
    await Promise.race([this.proc.exited, Bun.sleep(5000)]);
    this.proc.kill("SIGKILL");
  }
}
