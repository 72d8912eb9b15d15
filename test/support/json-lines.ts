/**
 * Reads a child process's stdout as JSON log lines, one object per line: each goes to `logs` (a
 * line that is not JSON as `{ unparsed }`) and to `onEntry`. Resolves when the stream ends.
 */
export async function readJsonLines(
  stream: ReadableStream<Uint8Array>,
  logs: Record<string, unknown>[],
  onEntry?: (entry: Record<string, unknown>) => void,
): Promise<void> {
  const decoder = new TextDecoder();
  let buf = "";
  const take = (line: string) => {
    let entry: Record<string, unknown>;
    try {
      entry = JSON.parse(line);
    } catch {
      logs.push({ unparsed: line });
      return;
    }
    logs.push(entry);
    onEntry?.(entry);
  };
  for await (const chunk of stream) {
    buf += decoder.decode(chunk, { stream: true });
    let nl: number;
    while ((nl = buf.indexOf("\n")) >= 0) {
      take(buf.slice(0, nl));
      buf = buf.slice(nl + 1);
    }
  }
  if (buf.trim()) take(buf);
}
