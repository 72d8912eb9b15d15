// The web chat page: plain TypeScript and the DOM. State is a map of rooms, each holding its
// messages by seq (so a message can never be shown twice) and its own <ol>; the live feed
// (live.ts) resumes every room from the newest seq held; History fills the rest on scroll-back.
import type { Client } from "@connectrpc/connect";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import type { ChatEvent, ChatService, Message } from "../gen/chat/v1/chat_pb.ts";
import {
  chatClient,
  describe,
  dmRoom,
  isDmRoom,
  isPublicRoomName,
  isValidUserId,
  ROOM_NAME_RULE,
  USER_ID_RULE,
  isAuthError,
  isTransient,
  loadCredentials,
  newId,
  pageConfig,
  saveCredentials,
  sendTyping,
  tokenSubject,
  type Credentials,
  type ServerConfig,
} from "./api.ts";
import { Live, type LiveStatus } from "./live.ts";

// ---------------------------------------------------------------------------------------------
// DOM

const $ = <T extends HTMLElement = HTMLElement>(id: string) => document.getElementById(id) as T;
const ui = {
  loading: $("loading"),
  signin: $("signin"),
  signinForm: $<HTMLFormElement>("signin-form"),
  signinIntro: $("signin-intro"),
  signinNameField: $("signin-name-field"),
  signinName: $<HTMLInputElement>("signin-name"),
  signinTokenField: $("signin-token-field"),
  signinToken: $<HTMLTextAreaElement>("signin-token"),
  signinError: $("signin-error"),
  app: $("app"),
  sidebar: $("sidebar"),
  scrim: $("scrim"),
  menu: $<HTMLButtonElement>("menu"),
  meName: $("me-name"),
  meRegion: $("me-region"),
  signout: $<HTMLButtonElement>("signout"),
  roomList: $<HTMLUListElement>("room-list"),
  joinForm: $<HTMLFormElement>("join-form"),
  joinName: $<HTMLInputElement>("join-name"),
  joinError: $("join-error"),
  dmList: $<HTMLUListElement>("dm-list"),
  dmEmpty: $("dm-empty"),
  onlineList: $<HTMLUListElement>("online-list"),
  onlineCount: $("online-count"),
  roomTitle: $("room-title"),
  conn: $("conn"),
  log: $("log"),
  older: $<HTMLButtonElement>("older"),
  logNote: $("log-note"),
  typing: $("typing"),
  composer: $<HTMLFormElement>("composer"),
  textLabel: $("text-label"),
  text: $<HTMLTextAreaElement>("text"),
  sendError: $("send-error"),
};

function el<K extends keyof HTMLElementTagNameMap>(tag: K, cls?: string, text?: string): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

// ---------------------------------------------------------------------------------------------
// State

interface Room {
  name: string;
  /** A direct-message room: the other user. */
  peer?: string;
  msgs: Map<bigint, Message>;
  /** Newest and oldest seq held; every seq between them is held too. */
  maxSeq?: bigint;
  minSeq?: bigint;
  hasOlder: boolean;
  loaded: boolean;
  loading?: Promise<void>;
  loadingOlder: boolean;
  /** In the live feed's room set. */
  subscribed: boolean;
  /** Listed by ListRooms (or subscribed): shown in the sidebar. */
  listed: boolean;
  unread: number;
  list: HTMLOListElement;
  /** Who is typing, until when (ms). */
  typing: Map<string, number>;
}

const VIEW_KEY = "edgechat.view";
const NOTICE_KEY = "edgechat.notice";
const PAGE = 50;
const TYPING_SEND_MS = 2500;
const TYPING_SERVER_MS = 1100;
const TYPING_SHOW_MS = 4500;
const GROUP_MS = 5 * 60_000;

let config: ServerConfig = { auth: "dev", region: "" };
let creds: Credentials;
let client: Client<typeof ChatService>;
let live: Live | undefined;
let me = "";
const rooms = new Map<string, Room>();
let active: Room | undefined;
let online: string[] = [];

const label = (r: Room) => (r.peer ? `@${r.peer}` : `#${r.name}`);

function room(name: string): Room {
  let r = rooms.get(name);
  if (!r) {
    let peer: string | undefined;
    if (isDmRoom(name)) {
      const [a, b] = name.slice(3).split(":");
      peer = a === me ? b : a;
    }
    const list = el("ol", "messages");
    r = {
      name,
      peer,
      msgs: new Map(),
      hasOlder: false,
      loaded: false,
      loadingOlder: false,
      subscribed: false,
      listed: false,
      unread: 0,
      list,
      typing: new Map(),
    };
    rooms.set(name, r);
  }
  return r;
}

function subscribedNames(): string[] {
  return [...rooms.values()].filter((r) => r.subscribed).map((r) => r.name);
}

function saveView(): void {
  sessionStorage.setItem(VIEW_KEY, JSON.stringify({ rooms: subscribedNames(), active: active?.name }));
}

function loadView(): { rooms: string[]; active?: string } {
  try {
    const v = JSON.parse(sessionStorage.getItem(VIEW_KEY) ?? "null");
    if (v && Array.isArray(v.rooms)) {
      const names = v.rooms.filter((n: unknown): n is string => typeof n === "string" && (isPublicRoomName(n) || isDmRoom(n)));
      return { rooms: names, active: typeof v.active === "string" ? v.active : undefined };
    }
  } catch {
    // Start over.
  }
  return { rooms: [] };
}

// ---------------------------------------------------------------------------------------------
// Messages

function timeOf(m: Message): Date {
  return m.sentAt ? timestampDate(m.sentAt) : new Date();
}

const hhmm = new Intl.DateTimeFormat(undefined, { hour: "numeric", minute: "2-digit" });
const dayHhmm = new Intl.DateTimeFormat(undefined, { month: "short", day: "numeric", hour: "numeric", minute: "2-digit" });
const full = new Intl.DateTimeFormat(undefined, { dateStyle: "full", timeStyle: "medium" });

function formatTime(d: Date): string {
  return d.toDateString() === new Date().toDateString() ? hhmm.format(d) : dayHhmm.format(d);
}

function messageNode(m: Message): HTMLLIElement {
  const mine = m.from === me;
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
  li.append(meta, el("p", "msg-text", m.text));
  return li;
}

/** Marks a message that follows one of the same sender within minutes, so it is drawn as a group. */
function regroup(li: Element | null): void {
  if (!(li instanceof HTMLLIElement)) return;
  const prev = li.previousElementSibling as HTMLLIElement | null;
  const cont = !!prev && prev.dataset.from === li.dataset.from && Number(li.dataset.time) - Number(prev.dataset.time) < GROUP_MS;
  li.classList.toggle("cont", cont);
}

function insertNode(r: Room, m: Message): void {
  const node = messageNode(m);
  const items = r.list.children;
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
  r.list.insertBefore(node, items[lo] ?? null);
  regroup(node);
  regroup(node.nextElementSibling);
}

/** Adds a message unless the room has its seq already; true when it is new. */
function addMessage(r: Room, m: Message): boolean {
  if (r.msgs.has(m.seq)) return false;
  r.msgs.set(m.seq, m);
  if (r.maxSeq === undefined || m.seq > r.maxSeq) r.maxSeq = m.seq;
  if (r.minSeq === undefined || m.seq < r.minSeq) r.minSeq = m.seq;
  insertNode(r, m);
  return true;
}

const nearBottom = () => ui.log.scrollHeight - ui.log.scrollTop - ui.log.clientHeight < 48;
const toBottom = () => (ui.log.scrollTop = ui.log.scrollHeight);

/** The newest page of a room: what a room shows first, and the resume point of its stream. */
function ensureLoaded(r: Room): Promise<void> {
  if (r.loaded) return Promise.resolve();
  r.loading ??= (async () => {
    try {
      const page = await client.history({ room: r.name, limit: PAGE });
      const stick = r === active && nearBottom();
      for (const m of page.messages) addMessage(r, m);
      r.maxSeq ??= 0n; // an empty room: everything from seq 1 on
      r.hasOlder = page.hasMore || (page.messages.length === 0 && (r.minSeq ?? 0n) > 1n);
      r.loaded = true;
      if (r === active) {
        renderLog();
        if (stick) toBottom();
        fillViewport(r);
      }
    } finally {
      r.loading = undefined;
    }
  })();
  return r.loading;
}

/** Scroll-back: the page of messages just before the oldest one shown. */
async function loadOlder(r: Room): Promise<void> {
  if (r.loadingOlder || !r.hasOlder || r.minSeq === undefined) return;
  r.loadingOlder = true;
  renderOlder();
  try {
    const page = await client.history({ room: r.name, beforeSeq: r.minSeq, limit: PAGE });
    const fromBottom = ui.log.scrollHeight - ui.log.scrollTop;
    for (const m of page.messages) addMessage(r, m);
    r.hasOlder = page.hasMore && (r.minSeq ?? 0n) > 1n;
    if (r === active) ui.log.scrollTop = ui.log.scrollHeight - fromBottom;
  } catch (err) {
    if (r === active) ui.logNote.textContent = `Older messages could not be loaded: ${describe(err)}`;
    return;
  } finally {
    r.loadingOlder = false;
    if (r === active) renderOlder();
  }
  // Only after a page came: a failing server is not asked again in a loop.
  fillViewport(r);
}

/** Loads older pages while the room's messages do not fill the view (no scrollbar to pull on). */
function fillViewport(r: Room): void {
  if (r === active && r.hasOlder && !r.loadingOlder && ui.log.scrollHeight <= ui.log.clientHeight + 8) void loadOlder(r);
}

/** A hole between what the room has and a live message: fetched from history. */
async function fillGap(r: Room, after: bigint, before: bigint): Promise<void> {
  try {
    const page = await client.history({ room: r.name, afterSeq: after, beforeSeq: before, limit: 500 });
    for (const m of page.messages) addMessage(r, m);
  } catch {
    // The next resume fills it.
  }
}

// ---------------------------------------------------------------------------------------------
// Live events

function onEvent(e: ChatEvent): void {
  switch (e.kind.case) {
    case "ready":
      me = e.kind.value.user;
      config.region = e.kind.value.region || config.region;
      renderMe();
      return;
    case "joined": {
      // A direct message to us arrived and the server joined this stream to its room.
      const r = room(e.kind.value.room);
      if (!r.subscribed) {
        r.subscribed = true;
        r.listed = true;
        saveView();
        renderLists();
      }
      if (!r.loaded) void ensureLoaded(r).catch(() => undefined);
      return;
    }
    case "message":
      return onMessage(e.kind.value);
    case "presence":
      return scheduleOnline();
    case "typing": {
      const { room: name, user } = e.kind.value;
      const r = room(name);
      r.typing.set(user, Date.now() + TYPING_SHOW_MS);
      if (r === active) renderTyping();
      return;
    }
  }
}

function onMessage(m: Message): void {
  const r = room(m.room);
  const gapFrom = r.loaded && r.maxSeq !== undefined && m.seq > r.maxSeq + 1n ? r.maxSeq : undefined;
  const isActive = r === active;
  const stick = isActive && nearBottom();
  if (!addMessage(r, m)) return;
  if (gapFrom !== undefined) void fillGap(r, gapFrom, m.seq);
  r.typing.delete(m.from);
  if (!r.listed) {
    r.listed = true;
    renderLists();
  }
  if (m.from !== me && (!isActive || document.hidden)) {
    r.unread++;
    renderLists();
    renderTitle();
  }
  if (isActive) {
    renderTyping();
    renderLog();
    if (stick) toBottom();
  }
}

function onStatus(s: LiveStatus): void {
  clearInterval(connTimer);
  ui.app.dataset.conn = s.state;
  const show = (text: string) => {
    ui.conn.textContent = text;
    ui.conn.classList.toggle("visible", text !== "");
  };
  switch (s.state) {
    case "live":
      show("");
      // Rooms whose first page failed to load (the server was away) get it now.
      for (const r of rooms.values()) if (r.subscribed && !r.loaded) void ensureLoaded(r).catch(() => undefined);
      scheduleOnline();
      return;
    case "connecting":
      return show("Connecting…");
    case "retrying": {
      const tick = () => show(`Offline, retrying in ${Math.max(1, Math.ceil((s.at - Date.now()) / 1000))} s`);
      tick();
      ui.conn.title = s.reason;
      connTimer = setInterval(tick, 1000);
      return;
    }
    case "stopped":
      return show("");
  }
}
let connTimer: ReturnType<typeof setInterval> | undefined;

// ---------------------------------------------------------------------------------------------
// Rendering

function renderMe(): void {
  ui.meName.textContent = me;
  ui.meRegion.textContent = config.region ? ` · ${config.region}` : "";
}

function renderTitle(): void {
  const unread = [...rooms.values()].reduce((n, r) => n + r.unread, 0);
  document.title = `${unread ? `(${unread}) ` : ""}${active ? label(active) + " · " : ""}edgechat`;
}

function renderLog(): void {
  const r = active;
  if (!r) return;
  if (ui.log.lastElementChild !== r.list) {
    ui.log.querySelector("ol.messages")?.remove();
    ui.log.append(r.list);
  }
  ui.logNote.textContent = !r.loaded && r.msgs.size === 0 ? "Loading…" : r.msgs.size === 0 ? `No messages in ${label(r)} yet. Say hello!` : "";
  renderOlder();
}

function renderOlder(): void {
  const r = active;
  ui.older.hidden = !r || !r.hasOlder;
  ui.older.disabled = !!r?.loadingOlder;
  ui.older.textContent = r?.loadingOlder ? "Loading older messages…" : "Show older messages";
}

function renderTyping(): void {
  const r = active;
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

/** Rebuilds a list, keeping keyboard focus on the item that had it. */
function fillList(list: HTMLUListElement, items: HTMLLIElement[]): void {
  const focused = list.contains(document.activeElement) ? (document.activeElement as HTMLElement).dataset.key : undefined;
  list.replaceChildren(...items);
  if (focused) list.querySelector<HTMLElement>(`[data-key="${CSS.escape(focused)}"]`)?.focus();
}

function roomItem(r: Room): HTMLLIElement {
  const li = el("li");
  const b = el("button", "item" + (r.subscribed ? "" : " idle"));
  b.type = "button";
  b.dataset.key = r.name;
  b.dataset.room = r.name;
  if (r === active) b.setAttribute("aria-current", "page");
  if (r.peer) {
    const dot = el("span", online.includes(r.peer) ? "dot on" : "dot");
    dot.setAttribute("aria-hidden", "true");
    b.append(dot, el("span", "name", r.peer));
  } else {
    const hash = el("span", "sigil", "#");
    hash.setAttribute("aria-hidden", "true");
    b.append(hash, el("span", "name", r.name));
  }
  if (r.unread > 0 && r !== active) {
    const badge = el("span", "badge", String(r.unread));
    badge.setAttribute("aria-label", `${r.unread} unread`);
    b.append(badge);
  }
  b.addEventListener("click", () => void openRoom(r.name));
  li.append(b);
  return li;
}

function renderLists(): void {
  const all = [...rooms.values()].filter((r) => r.listed || r.subscribed);
  const publics = all.filter((r) => !r.peer).sort((a, b) => a.name.localeCompare(b.name));
  const dms = all.filter((r) => r.peer).sort((a, b) => a.peer!.localeCompare(b.peer!));
  fillList(ui.roomList, publics.map(roomItem));
  fillList(ui.dmList, dms.map(roomItem));
  ui.dmEmpty.hidden = dms.length > 0;

  const people = online.map((user) => {
    const li = el("li");
    if (user === me) {
      const self = el("span", "item self");
      const dot = el("span", "dot on");
      dot.setAttribute("aria-hidden", "true");
      self.append(dot, el("span", "name", user), el("span", "muted", " (you)"));
      li.append(self);
      return li;
    }
    const b = el("button", "item");
    b.type = "button";
    b.dataset.key = "user:" + user;
    b.dataset.user = user;
    b.title = `Write to ${user}`;
    const dot = el("span", "dot on");
    dot.setAttribute("aria-hidden", "true");
    b.append(dot, el("span", "name", user));
    b.addEventListener("click", () => void openRoom(dmRoom(me, user)));
    li.append(b);
    return li;
  });
  fillList(ui.onlineList, people);
  ui.onlineCount.textContent = String(online.length);
  renderTitle();
}

// ---------------------------------------------------------------------------------------------
// Actions

/** Shows a room: joins it first (its newest page, then a new stream with it) when needed. */
async function openRoom(name: string): Promise<void> {
  const r = room(name);
  if (!r.subscribed) {
    try {
      await ensureLoaded(r);
    } catch (err) {
      // A bad name or a room that is not ours: say so. The server being away: join anyway.
      if (!isTransient(err)) {
        if (!r.listed) rooms.delete(name);
        showJoinError(describe(err));
        return;
      }
    }
    r.subscribed = true;
    r.listed = true;
    live?.resubscribe();
    void refreshRooms().catch(() => undefined);
  }
  select(r);
  closeNav();
}

function select(r: Room): void {
  const changed = active !== r;
  active = r;
  r.unread = 0;
  if (changed) {
    ui.sendError.textContent = "";
    ui.roomTitle.textContent = label(r);
    ui.text.placeholder = `Message ${label(r)}`;
    ui.textLabel.textContent = `Message ${label(r)}`;
  }
  renderLog();
  renderTyping();
  renderLists();
  saveView();
  toBottom();
  if (!r.loaded) void ensureLoaded(r).catch((err) => (ui.logNote.textContent = `Messages could not be loaded: ${describe(err)}`));
  else fillViewport(r);
}

function showJoinError(text: string): void {
  ui.joinError.textContent = text;
  openNav();
  ui.joinName.focus();
}

let sendCount = 0;
let failedSend = 0;

async function send(): Promise<void> {
  const r = active;
  const text = ui.text.value.trim();
  if (!r || !text) return;
  ui.text.value = "";
  autosize();
  const clientMsgId = newId();
  const n = ++sendCount;
  try {
    let res;
    for (let attempt = 0; ; attempt++) {
      try {
        res = await client.send({ target: { case: "room", value: r.name }, text, clientMsgId });
        break;
      } catch (err) {
        // The same key makes a retry safe: the server stores the message once.
        if (!isTransient(err) || attempt >= 2) throw err;
        await new Promise((ok) => setTimeout(ok, 400 * 3 ** attempt));
      }
    }
    // A send that started after a failed one clears its error; an earlier one does not.
    if (n > failedSend) ui.sendError.textContent = "";
    if (res.message) {
      addMessage(r, res.message);
      if (r === active) {
        renderLog();
        toBottom();
      }
    }
    sentSinceNotice = true;
  } catch (err) {
    if (isAuthError(err)) return signOut(describe(err));
    failedSend = n;
    ui.sendError.textContent = describe(err);
    if (!ui.text.value) {
      ui.text.value = text;
      autosize();
    }
  }
}

// Typing notices: one when typing starts, then one every TYPING_SEND_MS while it goes on. The server
// forwards at most one a second per room, so a notice that would come sooner (typing again just
// after sending) is put off until it would be forwarded, and dropped if the typing has stopped.
let lastNoticeAt = 0;
let lastNoticeRoom = "";
let lastInputAt = 0;
let sentSinceNotice = false;
let noticeTimer: ReturnType<typeof setTimeout> | undefined;

function typed(): void {
  lastInputAt = Date.now();
  if (!active || !ui.text.value.trim() || noticeTimer !== undefined) return;
  const interval = lastNoticeRoom !== active.name ? 0 : sentSinceNotice ? TYPING_SERVER_MS : TYPING_SEND_MS;
  const wait = lastNoticeAt + interval - Date.now();
  if (wait <= 0) return notice();
  noticeTimer = setTimeout(() => {
    noticeTimer = undefined;
    if (ui.text.value.trim() && Date.now() - lastInputAt < TYPING_SEND_MS) notice();
  }, wait);
}

function notice(): void {
  if (!active) return;
  lastNoticeAt = Date.now();
  lastNoticeRoom = active.name;
  sentSinceNotice = false;
  void sendTyping(creds, active.name);
}

function autosize(): void {
  ui.text.style.height = "auto";
  ui.text.style.height = `${Math.min(ui.text.scrollHeight, 160)}px`;
}

let onlineTimers: ReturnType<typeof setTimeout>[] = [];
/** Presence changed somewhere: ask who is online now, and once more when the dust has settled. */
function scheduleOnline(): void {
  for (const t of onlineTimers) clearTimeout(t);
  onlineTimers = [setTimeout(refreshOnline, 150), setTimeout(refreshOnline, 2000)];
}

async function refreshOnline(): Promise<void> {
  try {
    const res = await client.listOnline({});
    online = res.users.map((u) => u.user);
    renderLists();
  } catch (err) {
    if (isAuthError(err)) signOut(describe(err));
  }
}

/** A sidebar lists this many rooms at most; the rest are reached with "join". */
const MAX_LISTED = 1000;

async function refreshRooms(): Promise<void> {
  let pageToken = "";
  let listed = 0;
  do {
    const page = await client.listRooms({ pageSize: 500, pageToken });
    for (const info of page.rooms) room(info.name).listed = true;
    listed += page.rooms.length;
    pageToken = page.nextPageToken;
  } while (pageToken && listed < MAX_LISTED);
  renderLists();
}

function openNav(): void {
  if (!matchMedia("(max-width: 760px)").matches) return;
  ui.app.classList.add("nav-open");
  ui.scrim.hidden = false;
  ui.menu.setAttribute("aria-expanded", "true");
  ui.sidebar.querySelector<HTMLElement>("[aria-current], button")?.focus();
}

function closeNav(refocus = false): void {
  if (!ui.app.classList.contains("nav-open")) return;
  ui.app.classList.remove("nav-open");
  ui.scrim.hidden = true;
  ui.menu.setAttribute("aria-expanded", "false");
  if (refocus) ui.menu.focus();
}

function signOut(notice?: string): void {
  live?.stop();
  saveCredentials(undefined);
  sessionStorage.removeItem(VIEW_KEY);
  if (notice) sessionStorage.setItem(NOTICE_KEY, notice);
  location.reload();
}

// ---------------------------------------------------------------------------------------------
// Start

function showSignin(error = ""): void {
  ui.loading.hidden = true;
  ui.app.hidden = true;
  ui.signin.hidden = false;
  const dev = config.auth === "dev";
  ui.signinNameField.hidden = !dev;
  ui.signinTokenField.hidden = dev;
  ui.signinIntro.textContent = dev ? "This server runs in dev mode: pick any name to chat as." : "Paste an access token to sign in.";
  ui.signinError.textContent = error;
  (dev ? ui.signinName : ui.signinToken).focus();
}

async function start(c: Credentials): Promise<void> {
  creds = c;
  client = chatClient(c);
  me = c.mode === "dev" ? c.user : (tokenSubject(c.token) ?? "");
  try {
    await refreshRooms();
  } catch (err) {
    if (isAuthError(err) || !isTransient(err)) {
      saveCredentials(undefined);
      return showSignin(describe(err));
    }
    // The server is away: go on, the live feed retries.
  }
  saveCredentials(c);
  ui.loading.hidden = true;
  ui.signin.hidden = true;
  ui.app.hidden = false;
  renderMe();

  const view = loadView();
  const names = view.rooms.length > 0 ? view.rooms : ["lobby"];
  await Promise.all(
    names.map(async (name) => {
      const r = room(name);
      try {
        await ensureLoaded(r);
      } catch (err) {
        if (!isTransient(err)) return void rooms.delete(name);
      }
      r.subscribed = true;
      r.listed = true;
    }),
  );
  if (subscribedNames().length === 0) room("lobby").subscribed = true;
  const first = view.active && rooms.get(view.active)?.subscribed ? view.active : subscribedNames()[0];
  select(room(first));

  live = new Live({
    client,
    rooms: subscribedNames,
    sinceSeq: (name) => rooms.get(name)?.maxSeq,
    onEvent,
    onStatus,
    onAuthError: (err) => signOut(describe(err)),
    // A heartbeat comes after one to one and a fifth intervals of silence; two missed is dead.
    silenceMs: ((config.heartbeat_seconds ?? 25) * 2.5 + 10) * 1000,
  });
  live.resubscribe();
  void refreshOnline();
  setInterval(() => void refreshOnline(), 30_000);
  setInterval(() => void refreshRooms().catch(() => undefined), 60_000);
  setInterval(renderTyping, 1000);
  if (matchMedia("(pointer: fine)").matches) ui.text.focus();
}

function wire(): void {
  ui.signinForm.addEventListener("submit", (ev) => {
    ev.preventDefault();
    if (config.auth === "dev") {
      const name = ui.signinName.value.trim();
      if (!isValidUserId(name)) {
        ui.signinError.textContent = `Use ${USER_ID_RULE} (and not “Server”).`;
        ui.signinName.focus();
        return;
      }
      void start({ mode: "dev", user: name });
    } else {
      const token = ui.signinToken.value.trim().replace(/^Bearer\s+/i, "");
      if (!token) {
        ui.signinError.textContent = "Paste a token first.";
        ui.signinToken.focus();
        return;
      }
      void start({ mode: "jwt", token });
    }
  });

  ui.composer.addEventListener("submit", (ev) => {
    ev.preventDefault();
    void send();
  });
  ui.text.addEventListener("keydown", (ev) => {
    if (ev.key === "Enter" && !ev.shiftKey && !ev.altKey && !ev.ctrlKey && !ev.metaKey && !ev.isComposing) {
      ev.preventDefault();
      void send();
    }
  });
  ui.text.addEventListener("input", () => {
    autosize();
    typed();
  });

  ui.joinForm.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const name = ui.joinName.value.trim().replace(/^#/, "");
    if (!isPublicRoomName(name)) {
      ui.joinError.textContent = `Room names are ${ROOM_NAME_RULE} (not starting with dm:, in any case).`;
      return;
    }
    ui.joinError.textContent = "";
    ui.joinName.value = "";
    void openRoom(name);
  });

  ui.log.addEventListener("scroll", () => {
    if (active && ui.log.scrollTop < 80) void loadOlder(active);
  });
  ui.older.addEventListener("click", () => active && void loadOlder(active));

  ui.signout.addEventListener("click", () => signOut());
  ui.menu.addEventListener("click", () => (ui.app.classList.contains("nav-open") ? closeNav() : openNav()));
  ui.scrim.addEventListener("click", () => closeNav(true));
  document.addEventListener("keydown", (ev) => {
    if (ev.key === "Escape") closeNav(true);
  });
  window.addEventListener("online", () => live?.retryNow());
  document.addEventListener("visibilitychange", () => {
    if (!document.hidden && active) {
      active.unread = 0;
      renderLists();
    }
  });
}

async function boot(): Promise<void> {
  wire();
  // The server puts its config in the page, so the first paint need not wait for a request.
  const inPage = pageConfig();
  if (inPage) config = inPage;
  else {
    try {
      const res = await fetch("/config.json", { cache: "no-store" });
      if (res.ok) config = await res.json();
    } catch {
      // Assume the defaults; the first call will tell.
    }
  }
  const notice = sessionStorage.getItem(NOTICE_KEY) ?? "";
  sessionStorage.removeItem(NOTICE_KEY);
  const c = loadCredentials();
  if (c && c.mode === config.auth) await start(c);
  else showSignin(notice);
}

void boot();
