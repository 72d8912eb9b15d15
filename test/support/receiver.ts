// A webhook receiver for the tests: a real HTTP server on loopback that verifies each delivery's
// signature with the Standard Webhooks library (not our code), and answers as the test says: OK,
// an error status, slowly, or not at all (stopped).
import { Webhook } from "standardwebhooks";

export interface Received {
  id: string;
  type: string;
  body: Record<string, unknown>;
  /** Whether the signature verified with the endpoint's secret. */
  verified: boolean;
}

export interface Receiver {
  url: string;
  port: number;
  received: Received[];
  /** What the next requests get: a status (200 by default), and a delay before it. */
  answer: { status: number; delayMs: number };
  /** Every request, answered or not (tries). */
  tries: number;
  stop(): Promise<void>;
  /** Starts again on the same port (after stop). */
  start(): Promise<void>;
  /** Verifies with another secret from now on (one the server made). */
  useSecret(secret: string): void;
}

export async function startReceiver(secret: string, port = 0): Promise<Receiver> {
  let verifier = new Webhook(secret);
  const r: Receiver = {
    url: "",
    port,
    received: [],
    answer: { status: 200, delayMs: 0 },
    tries: 0,
    stop: async () => {},
    start: async () => {},
    useSecret: (s) => {
      verifier = new Webhook(s);
    },
  };
  const serve = () =>
    Bun.serve({
      port: r.port,
      hostname: "127.0.0.1",
      fetch: async (req) => {
        r.tries++;
        const body = await req.text();
        const headers = Object.fromEntries(req.headers);
        let verified = true;
        try {
          verifier.verify(body, headers);
        } catch {
          verified = false;
        }
        const { status, delayMs } = r.answer;
        if (delayMs) await Bun.sleep(delayMs);
        if (status >= 200 && status < 300) {
          const parsed = JSON.parse(body) as { type: string };
          r.received.push({ id: headers["webhook-id"], type: parsed.type, body: parsed as Record<string, unknown>, verified });
        }
        return new Response(null, { status });
      },
    });
  let server = serve();
  r.port = server.port!;
  r.url = `http://127.0.0.1:${r.port}/hooks`;
  r.stop = async () => {
    await server.stop(true);
  };
  r.start = async () => {
    server = serve();
  };
  return r;
}
