// The active room's messages: one <ol> per room, kept while the page lives, each message drawn
// once and placed by seq; the "older" button, the note under the log, and who is typing.
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { type Message, Role } from "../../gen/chat/v1/chat_pb.ts";
import { QUICK_REACTIONS } from "../../rules/reactions.ts";
import { describeChange } from "../../rules/changes.ts";
import { mentions } from "../../rules/unread.ts";
import { el, ui } from "../dom.ts";
import { label, state, type Room } from "../store.ts";

/** Messages of one sender within this long of each other are drawn as a group. */
const GROUP_MS = 5 * 60_000;

const lists = new WeakMap<Room, HTMLOListElement>();
function listOf(r: Room): HTMLOListElement {
  let list = lists.get(r);
  if (!list) lists.set(r, (list = el("ol", "messages")));
  return list;
}

function timeOf(m: Message): Date {
  return m.sentAt ? timestampDate(m.sentAt) : new Date();
}

const hhmm = new Intl.DateTimeFormat(undefined, { hour: "numeric", minute: "2-digit" });
const dayHhmm = new Intl.DateTimeFormat(undefined, { month: "short", day: "numeric", hour: "numeric", minute: "2-digit" });
const full = new Intl.DateTimeFormat(undefined, { dateStyle: "full", timeStyle: "medium" });

function formatTime(d: Date): string {
  return d.toDateString() === new Date().toDateString() ? hhmm.format(d) : dayHhmm.format(d);
}

/** May the user delete this message: their own, or any as the room's owner or admin. */
function mayDelete(r: Room, m: Message): boolean {
  if (m.from === state.me) return true;
  const role = state.details.get(r.name)?.desc.yourRole;
  return role === Role.OWNER || role === Role.ADMIN;
}

function actionButton(cls: string, text: string, label: string, data: Record<string, string>): HTMLButtonElement {
  const b = el("button", `${cls} quiet small`, text);
  b.type = "button";
  b.setAttribute("aria-label", label);
  Object.assign(b.dataset, data);
  return b;
}

/** The reactions under a message: one toggle per emoji, pressed when the user is among those who reacted. */
function reactionsNode(m: Message): HTMLElement {
  const row = el("div", "reactions");
  for (const x of m.reactions) {
    const mine = x.users.includes(state.me);
    const b = actionButton("reaction", `${x.emoji} ${x.count}`, `${x.emoji} ${x.count}: ${x.users.join(", ")}`, { react: String(m.seq), emoji: x.emoji });
    b.setAttribute("aria-pressed", String(mine));
    b.title = x.users.join(", ");
    row.append(b);
  }
  return row;
}

function messageNode(r: Room, m: Message): HTMLLIElement {
  const change = describeChange(m);
  if (change !== undefined) {
    // A change to the room, in its place among the messages: one line, never grouped.
    const li = el("li", "msg change");
    li.dataset.seq = String(m.seq);
    li.dataset.from = "";
    li.dataset.time = String(timeOf(m).getTime());
    li.append(el("p", "change-text", change));
    return li;
  }
  const mine = m.from === state.me;
  const li = el("li", mine ? "msg mine" : "msg");
  li.dataset.seq = String(m.seq);
  li.dataset.from = m.from;
  const t = timeOf(m);
  li.dataset.time = String(t.getTime());
  const meta = el("div", "meta");
  meta.append(el("span", "from", mine ? "You" : m.from));
  const time = el("time", "time", formatTime(t));
  time.dateTime = t.toISOString();
  time.title = full.format(t);
  meta.append(time);
  if (m.editedAt && !m.deleted) {
    const edited = el("span", "edited", "(edited)");
    edited.title = full.format(timestampDate(m.editedAt));
    meta.append(edited);
  }
  li.append(meta);
  if (m.replyTo > 0n) li.append(quoteNode(r, m.replyTo));
  if (m.deleted) {
    li.classList.add("deleted");
    li.append(el("p", "msg-text", "This message was deleted."));
    return li;
  }
  if (!mine && mentions(m.text, state.me)) li.classList.add("mentioned");
  li.append(el("p", "msg-text", m.text));
  if (m.reactions.length > 0) li.append(reactionsNode(m));
  // The actions float at the row's far edge, shown on hover (always on touch screens).
  const seq = String(m.seq);
  const who = mine ? "your message" : m.from;
  const short = m.text.slice(0, 40);
  const actions = el("div", "msg-actions");
  actions.append(actionButton("reply-btn", "Reply", `Reply to ${who}: ${short}`, { reply: seq }));
  const picker = el("div", "picker");
  picker.hidden = true;
  for (const emoji of QUICK_REACTIONS) picker.append(actionButton("pick", emoji, `React ${emoji} to ${who}: ${short}`, { react: seq, emoji }));
  actions.append(actionButton("react-btn", "React", `React to ${who}: ${short}`, { pick: seq }), picker);
  if (mine) actions.append(actionButton("edit-btn", "Edit", `Edit your message: ${short}`, { edit: seq }));
  if (mayDelete(r, m))
    actions.append(actionButton("delete-btn", "Delete", `Delete ${mine ? "your message" : `${m.from}'s message`}: ${short}`, { delete: seq }));
  li.append(actions);
  return li;
}

/** What a reply answers: from the room's messages, or read from History when the page does not hold it. */
function quoteNode(r: Room, seq: bigint): HTMLElement {
  const q = el("blockquote", "quote");
  const fill = (m: Message | undefined) => {
    q.textContent = m ? `${m.from}: ${m.text.length > 80 ? `${m.text.slice(0, 79)}…` : m.text}` : `message #${seq}`;
  };
  const held = r.msgs.get(seq);
  fill(held);
  if (!held) {
    state.client
      .history({ room: r.name, afterSeq: seq - 1n, limit: 1 })
      .then((page) => fill(page.messages.find((m) => m.seq === seq)))
      .catch(() => undefined);
  }
  return q;
}

/** Marks a message that follows one of the same sender within minutes, so it is drawn as a group. */
function regroup(li: Element | null): void {
  if (!(li instanceof HTMLLIElement)) return;
  const prev = li.previousElementSibling as HTMLLIElement | null;
  const cont = !!prev && prev.dataset.from === li.dataset.from && Number(li.dataset.time) - Number(prev.dataset.time) < GROUP_MS;
  li.classList.toggle("cont", cont);
}

/** Draws a message again in its new state (an edit, a delete, a reaction), if it is drawn. */
export function redrawMessage(r: Room, m: Message): void {
  const old = listOf(r).querySelector(`li[data-seq="${m.seq}"]`);
  if (!old) return;
  const node = messageNode(r, m);
  if (old.classList.contains("cont")) node.classList.add("cont");
  old.replaceWith(node);
}

/** Draws a message the room just took (store.ts hold) in its place by seq; a change entry is not drawn (its message is). */
export function insertMessage(r: Room, m: Message): void {
  if (m.update) return;
  const list = listOf(r);
  // Out of the way of the search by seq, and back in its place after.
  list.querySelector("li.new-marker")?.remove();
  const node = messageNode(r, m);
  const items = list.children;
  // Binary search for the first item with a larger seq; appending is the common case.
  let lo = 0;
  let hi = items.length;
  const last = items[hi - 1] as HTMLElement | undefined;
  if (last && BigInt(last.dataset.seq!) < m.seq) lo = hi;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (BigInt((items[mid] as HTMLElement).dataset.seq!) < m.seq) lo = mid + 1;
    else hi = mid;
  }
  list.insertBefore(node, items[lo] ?? null);
  regroup(node);
  regroup(node.nextElementSibling);
  placeMarker(r, list);
}

export const nearBottom = () => ui.log.scrollHeight - ui.log.scrollTop - ui.log.clientHeight < 48;
export const toBottom = () => (ui.log.scrollTop = ui.log.scrollHeight);

export function renderLog(): void {
  const r = state.active;
  if (!r) return;
  const list = listOf(r);
  if (ui.log.lastElementChild !== list) {
    ui.log.querySelector("ol.messages")?.remove();
    ui.log.append(list);
  }
  placeMarker(r, list);
  ui.logNote.textContent = r.notice ?? (!r.loaded && r.msgs.size === 0 ? "Loading…" : r.msgs.size === 0 ? `No messages in ${label(r)} yet. Say hello!` : "");
  renderOlder();
}

/** The "new messages" line, before the first message after where the user had read when the room opened. */
function placeMarker(r: Room, list: HTMLOListElement): void {
  list.querySelector("li.new-marker")?.remove();
  if (r.markerAt === undefined) return;
  const first = [...list.children].find((li) => {
    const e = li as HTMLElement;
    return BigInt(e.dataset.seq ?? "0") > r.markerAt! && e.dataset.from !== state.me && e.dataset.from !== "";
  });
  if (!first) return;
  const marker = el("li", "new-marker", "New messages");
  marker.setAttribute("role", "separator");
  list.insertBefore(marker, first);
}

export function renderOlder(): void {
  const r = state.active;
  ui.older.hidden = !r || !r.hasOlder;
  ui.older.disabled = !!r?.loadingOlder;
  ui.older.textContent = r?.loadingOlder ? "Loading older messages…" : "Show older messages";
}

export function renderTyping(): void {
  const r = state.active;
  const now = Date.now();
  const who: string[] = [];
  if (r) {
    for (const [user, until] of r.typing) {
      if (until > now) who.push(user);
      else r.typing.delete(user);
    }
  }
  const text =
    who.length === 0 ? "" : who.length === 1 ? `${who[0]} is typing…` : who.length === 2 ? `${who[0]} and ${who[1]} are typing…` : "Several people are typing…";
  if (ui.typing.textContent !== text) ui.typing.textContent = text;
}
