// Streams with something to write are flushed together once the current turn of the event loop is
// done, so that every event that turn produced (a group commit's batch of messages, say) leaves a
// stream in one write rather than one each. The direct HTTP/2 path and the WebSocket gateway use it.

export interface Flushable {
  flush(): void;
}

let due = new Set<Flushable>();
let scheduled = false;

export function flushSoon(stream: Flushable): void {
  due.add(stream);
  if (scheduled) return;
  scheduled = true;
  setImmediate(flushDue);
}

function flushDue(): void {
  scheduled = false;
  const ready = due;
  due = new Set();
  for (const stream of ready) stream.flush();
}
