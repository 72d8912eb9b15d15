// The web chat page: plain TypeScript and the DOM, no framework (the page is small, and a plain
// bundle starts at once under its strict CSP). One state store (store.ts), views that draw parts
// of it (views/), and here the actions: what the user does and what the server says change the
// store, then the views concerned render. The live feed (live.ts) resumes every room from the
// newest seq held; History fills the rest on scroll-back.
import type { ChatEvent, Message } from "../gen/chat/v1/chat_pb.ts";
import {
  chatClient,
  describe,
  dmRoom,
  isAuthError,
  isPublicRoomName,
  isTransient,
  isValidUserId,
  loadCredentials,
  newId,
  pageConfig,
  ROOM_NAME_RULE,
  saveCredentials,
  sendTyping,
  tokenSubject,
  USER_ID_RULE,
  type Credentials,
} from "./api.ts";
import { ui } from "./dom.ts";
import { Live, type LiveStatus } from "./live.ts";
import { hold, label, loadView, NOTICE_KEY, recount, room, saveView, state, subscribedNames, takeNewer, VIEW_KEY, type Room } from "./store.ts";
import { mentions } from "../rules/unread.ts";
import { insertMessage, nearBottom, redrawMessage, renderLog, renderOlder, renderTyping, toBottom } from "./views/log.ts";
import { closeNav, openNav, renderLists, renderMe, renderTitle } from "./views/sidebar.ts";
import { createPrivate, loadBlocked, loadDetails, onChange, wireRooms } from "./rooms.ts";
import { renderPanel } from "./views/room-panel.ts";
import { renderStatus, showSignin } from "./views/status.ts";

const PAGE = 50;
const TYPING_SEND_MS = 2500;
const TYPING_SERVER_MS = 1100;
const TYPING_SHOW_MS = 4500;

/**
 * Takes a message into its room and draws it, unless the room has it already; true when new. A
 * change entry is held (its seq) and draws the message it carries in its new state.
 */
function addMessage(r: Room, m: Message): boolean {
  if (!hold(r, m)) return false;
  if (m.update?.message) showNewer(r, m.update.message);
  else insertMessage(r, m);
  return true;
}

/** A message's newer state (an edit, a delete, a reaction), drawn in its place. */
function showNewer(r: Room, m: Message): void {
  if (!takeNewer(r, m)) return;
  redrawMessage(r, m);
  if (state.editing?.seq === m.seq && state.editing.room === m.room && m.deleted) setEditing(undefined);
}

// ---------------------------------------------------------------------------------------------
// History

/** The newest page of a room: what a room shows first, and the resume point of its stream. */
function ensureLoaded(r: Room): Promise<void> {
  if (r.loaded) return Promise.resolve();
  r.loading ??= (async () => {
    try {
      const page = await state.client.history({ room: r.name, limit: PAGE });
      const stick = r === state.active && nearBottom();
      for (const m of page.messages) addMessage(r, m);
      r.maxSeq ??= 0n; // an empty room: everything from seq 1 on
      r.hasOlder = page.hasMore || (page.messages.length === 0 && (r.minSeq ?? 0n) > 1n);
      r.loaded = true;
      if (r === state.active) {
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
    const page = await state.client.history({ room: r.name, beforeSeq: r.minSeq, limit: PAGE });
    const fromBottom = ui.log.scrollHeight - ui.log.scrollTop;
    for (const m of page.messages) addMessage(r, m);
    r.hasOlder = page.hasMore && (r.minSeq ?? 0n) > 1n;
    if (r === state.active) ui.log.scrollTop = ui.log.scrollHeight - fromBottom;
  } catch (err) {
    if (r === state.active) ui.logNote.textContent = `Older messages could not be loaded: ${describe(err)}`;
    return;
  } finally {
    r.loadingOlder = false;
    if (r === state.active) renderOlder();
  }
  // Only after a page came: a failing server is not asked again in a loop.
  fillViewport(r);
}

/** Loads older pages while the room's messages do not fill the view (no scrollbar to pull on). */
function fillViewport(r: Room): void {
  if (r === state.active && r.hasOlder && !r.loadingOlder && ui.log.scrollHeight <= ui.log.clientHeight + 8) void loadOlder(r);
}

/** A hole between what the room has and a live message: fetched from history. */
async function fillGap(r: Room, after: bigint, before: bigint): Promise<void> {
  try {
    const page = await state.client.history({ room: r.name, afterSeq: after, beforeSeq: before, limit: 500 });
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
      state.me = e.kind.value.user;
      state.config.region = e.kind.value.region || state.config.region;
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
    case "read": {
      // This user read a room, here or on another device: its badge follows.
      const r = room(e.kind.value.room);
      if (e.kind.value.lastReadSeq > r.lastRead) {
        r.lastRead = e.kind.value.lastReadSeq;
        recount(r);
        renderLists();
      }
      return;
    }
    case "error": {
      // The server took the stream out of a room: a ban, a removal from a private room, a deletion.
      const { room: name, code, text } = e.kind.value;
      if (name && (code === "permission_denied" || code === "not_found")) leftRoom(name, text);
      return;
    }
    case "presence":
      return scheduleOnline();
    case "typing": {
      const { room: name, user } = e.kind.value;
      const r = room(name);
      r.typing.set(user, Date.now() + TYPING_SHOW_MS);
      if (r === state.active) renderTyping();
      return;
    }
  }
}

function onMessage(m: Message): void {
  const r = room(m.room);
  const gapFrom = r.loaded && r.maxSeq !== undefined && m.seq > r.maxSeq + 1n ? r.maxSeq : undefined;
  const isActive = r === state.active;
  const stick = isActive && nearBottom();
  if (!addMessage(r, m)) return;
  onChange(m);
  if (gapFrom !== undefined) void fillGap(r, gapFrom, m.seq);
  r.typing.delete(m.from);
  if (!r.listed) {
    r.listed = true;
    renderLists();
  }
  if (m.from !== state.me && !m.change && !m.update && m.seq > r.lastRead && (!isActive || document.hidden)) {
    r.unread++;
    if (mentions(m.text, state.me)) r.mentions++;
    renderLists();
    renderTitle();
  }
  if (isActive && !document.hidden) markSeen(r);
  if (isActive) {
    renderTyping();
    renderLog();
    if (stick) toBottom();
  }
}

function onStatus(s: LiveStatus): void {
  renderStatus(s);
  if (s.state !== "live") return;
  // Rooms whose first page failed to load (the server was away) get it now.
  for (const r of state.rooms.values()) if (r.subscribed && !r.loaded) void ensureLoaded(r).catch(() => undefined);
  scheduleOnline();
}

// ---------------------------------------------------------------------------------------------
// Actions

/** Shows a room: joins it first (its newest page, then a new stream with it) when needed. */
async function openRoom(name: string): Promise<void> {
  const r = room(name);
  if (!r.subscribed) {
    // A room the page was put out of: ask again whether it may read it.
    if (r.notice) r.loaded = false;
    try {
      await ensureLoaded(r);
      r.notice = undefined;
    } catch (err) {
      // A bad name or a room that is not ours: say so. The server being away: join anyway.
      if (!isTransient(err)) {
        if (!r.listed) state.rooms.delete(name);
        showJoinError(describe(err));
        return;
      }
    }
    r.subscribed = true;
    r.listed = true;
    state.live?.resubscribe();
    void refreshRooms().catch(() => undefined);
  }
  select(r);
  closeNav();
}

function select(r: Room): void {
  const changed = state.active !== r;
  state.active = r;
  // The "new messages" line stays where the user had read when they came in.
  if (changed) r.markerAt = r.unread > 0 ? r.lastRead : undefined;
  r.unread = 0;
  r.mentions = 0;
  if (changed) {
    ui.sendError.textContent = "";
    ui.panelError.textContent = "";
    state.moderating = undefined;
    setReply(undefined);
    ui.textLabel.textContent = `Message ${label(r)}`;
    // Its title and topic for the head, its members for the panel.
    if (!r.peer) void loadDetails(r.name);
  }
  renderPanel();
  renderLog();
  renderTyping();
  renderLists();
  saveView();
  toBottom();
  if (!r.loaded) {
    void ensureLoaded(r).then(
      () => markSeen(r),
      (err) => (ui.logNote.textContent = `Messages could not be loaded: ${describe(err)}`),
    );
  } else {
    fillViewport(r);
    markSeen(r);
  }
}

// Read state: the room shown, in a visible tab, is read up to its newest message. Told to the
// server at most every 500 ms per room; the server tells the user's other windows and devices.
const marks = new Map<string, { want: bigint; timer: ReturnType<typeof setTimeout> }>();
function markSeen(r: Room): void {
  // Once even for an empty room: from then on what comes there is counted as unread elsewhere.
  if (document.hidden || r.maxSeq === undefined || (r.reported !== undefined && r.maxSeq <= r.reported)) return;
  if (r.maxSeq <= r.lastRead && r.lastRead > 0n) return;
  const pending = marks.get(r.name);
  if (pending) {
    pending.want = r.maxSeq;
    return;
  }
  const seq = r.maxSeq;
  r.reported = seq;
  const entry = {
    want: seq,
    timer: setTimeout(() => {
      marks.delete(r.name);
      if (entry.want > r.lastRead && r === state.active) markSeen(r);
    }, 500),
  };
  marks.set(r.name, entry);
  state.client.markRead({ room: r.name, seq }).then(
    (res) => {
      if (res.lastReadSeq > r.lastRead) r.lastRead = res.lastReadSeq;
    },
    () => undefined, // a hint: the next message tries again
  );
}

/** The message the next send answers, shown above the box; undefined: none. */
function setReply(m: Message | undefined): void {
  if (m) state.editing = undefined;
  state.replyTo = m;
  ui.replying.hidden = !m;
  ui.replyingCancel.textContent = "Cancel reply";
  if (m) ui.replyingText.textContent = `Replying to ${m.from}: ${m.text.length > 60 ? `${m.text.slice(0, 59)}…` : m.text}`;
}

/** The user's message that the box edits: its text goes into the box, and Send replaces it. */
function setEditing(m: Message | undefined): void {
  if (m) setReply(undefined);
  const was = state.editing;
  state.editing = m;
  ui.replying.hidden = !m;
  ui.replyingCancel.textContent = "Cancel edit";
  if (m) {
    ui.replyingText.textContent = "Editing your message";
    ui.text.value = m.text;
    autosize();
    ui.text.focus();
  } else if (was) {
    ui.text.value = "";
    autosize();
  }
}

/** An edit, delete or reaction, answered with the message's new state, which is drawn at once. */
async function change(r: Room, call: (clientMsgId: string) => Promise<{ message?: Message }>): Promise<void> {
  const clientMsgId = newId();
  try {
    let res;
    for (let attempt = 0; ; attempt++) {
      try {
        res = await call(clientMsgId);
        break;
      } catch (err) {
        // The same key makes a retry safe: the server changes the message once.
        if (!isTransient(err) || attempt >= 2) throw err;
        await new Promise((ok) => setTimeout(ok, 400 * 3 ** attempt));
      }
    }
    ui.sendError.textContent = "";
    if (res.message) showNewer(r, res.message);
  } catch (err) {
    if (isAuthError(err)) return signOut(describe(err));
    ui.sendError.textContent = describe(err);
  }
}

/** The user's reaction with `emoji` on message `seq`: added, or taken back when it is there. */
function toggleReaction(r: Room, seq: bigint, emoji: string): void {
  const m = r.msgs.get(seq);
  const remove = !!m?.reactions.some((x) => x.emoji === emoji && x.users.includes(state.me));
  void change(r, (clientMsgId) => state.client.react({ room: r.name, seq, emoji, remove, clientMsgId }));
}

function showJoinError(text: string): void {
  ui.joinError.textContent = text;
  openNav();
  ui.joinName.focus();
}

let sendCount = 0;
let failedSend = 0;

async function send(): Promise<void> {
  const r = state.active;
  const text = ui.text.value.trim();
  if (!r || !text) return;
  ui.text.value = "";
  autosize();
  const editing = state.editing;
  if (editing) {
    state.editing = undefined;
    ui.replying.hidden = true;
    if (editing.room === r.name) return change(r, (clientMsgId) => state.client.editMessage({ room: r.name, seq: editing.seq, text, clientMsgId }));
  }
  const clientMsgId = newId();
  const replyTo = state.replyTo?.room === r.name ? state.replyTo.seq : 0n;
  setReply(undefined);
  const n = ++sendCount;
  try {
    let res;
    for (let attempt = 0; ; attempt++) {
      try {
        res = await state.client.send({ target: { case: "room", value: r.name }, text, clientMsgId, replyTo });
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
      if (r === state.active) {
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
  const active = state.active;
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
  const active = state.active;
  if (!active || !state.creds) return;
  lastNoticeAt = Date.now();
  lastNoticeRoom = active.name;
  sentSinceNotice = false;
  void sendTyping(state.creds, active.name);
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
    const res = await state.client.listOnline({});
    state.online = res.users.map((u) => u.user);
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
    const page = await state.client.listRooms({ pageSize: 500, pageToken });
    for (const info of page.rooms) {
      const r = room(info.name);
      r.listed = true;
      if (info.lastReadSeq > r.lastRead) r.lastRead = info.lastReadSeq;
      // The server's counts, except where the page is looking (it reads that one itself).
      if (r !== state.active) {
        r.unread = info.unread;
        r.mentions = info.unreadMentions;
      }
    }
    listed += page.rooms.length;
    pageToken = page.nextPageToken;
  } while (pageToken && listed < MAX_LISTED);
  renderLists();
}

/** Out of a room for good (left, banned, removed, deleted): no longer streamed; the log says why. */
function leftRoom(name: string, why: string): void {
  const r = state.rooms.get(name);
  if (!r) return;
  const streamed = r.subscribed;
  r.subscribed = false;
  r.listed = false;
  r.notice = why;
  state.details.delete(name);
  saveView();
  renderLists();
  if (r === state.active) {
    renderLog();
    renderPanel();
  }
  if (streamed) state.live?.resubscribe();
}

/** The live feed was refused (a Subscribe whose only room was taken away): which rooms are still ours? */
async function recheckRooms(): Promise<void> {
  await Promise.all(
    subscribedNames().map(async (name) => {
      try {
        await state.client.history({ room: name, limit: 1 });
      } catch (err) {
        if (!isTransient(err) && !isAuthError(err)) leftRoom(name, describe(err));
      }
    }),
  );
}

function signOut(notice?: string): void {
  state.live?.stop();
  saveCredentials(undefined);
  sessionStorage.removeItem(VIEW_KEY);
  if (notice) sessionStorage.setItem(NOTICE_KEY, notice);
  location.reload();
}

// ---------------------------------------------------------------------------------------------
// Start

async function start(c: Credentials): Promise<void> {
  state.creds = c;
  state.client = chatClient(c);
  state.me = c.mode === "dev" ? c.user : (tokenSubject(c.token) ?? "");
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
        if (!isTransient(err)) return void state.rooms.delete(name);
      }
      r.subscribed = true;
      r.listed = true;
    }),
  );
  if (subscribedNames().length === 0) room("lobby").subscribed = true;
  const first = view.active && state.rooms.get(view.active)?.subscribed ? view.active : subscribedNames()[0];
  select(room(first));

  state.live = new Live({
    client: state.client,
    rooms: subscribedNames,
    sinceSeq: (name) => state.rooms.get(name)?.maxSeq,
    onEvent,
    onStatus,
    onAuthError: (err) => signOut(describe(err)),
    onRefused: recheckRooms,
    // A heartbeat comes after one to one and a fifth intervals of silence; two missed is dead.
    silenceMs: ((state.config.heartbeat_seconds ?? 25) * 2.5 + 10) * 1000,
  });
  state.live.resubscribe();
  void refreshOnline();
  void loadBlocked();
  setInterval(() => void refreshOnline(), 30_000);
  setInterval(() => void refreshRooms().catch(() => undefined), 60_000);
  setInterval(renderTyping, 1000);
  if (matchMedia("(pointer: fine)").matches) ui.text.focus();
}

function wire(): void {
  wireRooms({ openRoom, leftRoom, signOut });
  ui.signinForm.addEventListener("submit", (ev) => {
    ev.preventDefault();
    if (state.config.auth === "dev") {
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
    if (ui.joinPrivate.checked) {
      ui.joinPrivate.checked = false;
      void createPrivate(name).then((err) => err && showJoinError(err));
    } else void openRoom(name);
  });

  // The sidebar's lists are rebuilt as things change: one handler per list, for the button clicked.
  for (const list of [ui.roomList, ui.dmList, ui.onlineList]) {
    list.addEventListener("click", (ev) => {
      const b = (ev.target as Element).closest<HTMLElement>("button[data-room], button[data-user]");
      if (!b) return;
      const name = b.dataset.user !== undefined ? dmRoom(state.me, b.dataset.user) : b.dataset.room;
      if (name) void openRoom(name);
    });
  }

  // The actions of the messages, one handler for all: reply, react (the quick picker, or a reaction
  // shown), edit and delete.
  ui.log.addEventListener("click", (ev) => {
    const r = state.active;
    const b = (ev.target as Element).closest<HTMLElement>("button[data-reply], button[data-pick], button[data-react], button[data-edit], button[data-delete]");
    if (!r || !b) return;
    const d = b.dataset;
    const m = r.msgs.get(BigInt(d.reply ?? d.pick ?? d.react ?? d.edit ?? d.delete ?? "0"));
    if (!m) return;
    if (d.reply !== undefined) {
      setReply(m);
      ui.text.focus();
    } else if (d.pick !== undefined) {
      const picker = b.parentElement?.querySelector<HTMLElement>(".picker");
      if (picker) picker.hidden = !picker.hidden;
    } else if (d.react !== undefined && d.emoji) {
      toggleReaction(r, m.seq, d.emoji);
    } else if (d.edit !== undefined) {
      setEditing(m);
    } else if (d.delete !== undefined && confirm(m.from === state.me ? "Delete your message for everyone?" : `Delete ${m.from}'s message for everyone?`)) {
      void change(r, (clientMsgId) => state.client.deleteMessage({ room: r.name, seq: m.seq, clientMsgId }));
    }
  });
  ui.replyingCancel.addEventListener("click", () => {
    setReply(undefined);
    setEditing(undefined);
    ui.text.focus();
  });

  ui.log.addEventListener("scroll", () => {
    if (state.active && ui.log.scrollTop < 80) void loadOlder(state.active);
  });
  ui.older.addEventListener("click", () => state.active && void loadOlder(state.active));

  ui.signout.addEventListener("click", () => signOut());
  ui.menu.addEventListener("click", () => (ui.app.classList.contains("nav-open") ? closeNav() : openNav()));
  ui.scrim.addEventListener("click", () => closeNav(true));
  document.addEventListener("keydown", (ev) => {
    if (ev.key === "Escape") closeNav(true);
  });
  window.addEventListener("online", () => state.live?.retryNow());
  document.addEventListener("visibilitychange", () => {
    if (!document.hidden && state.active) {
      state.active.unread = 0;
      state.active.mentions = 0;
      renderLists();
      markSeen(state.active);
    }
  });
}

async function boot(): Promise<void> {
  wire();
  // The server puts its config in the page, so the first paint need not wait for a request.
  const inPage = pageConfig();
  if (inPage) state.config = inPage;
  else {
    try {
      const res = await fetch("/config.json", { cache: "no-store" });
      if (res.ok) state.config = await res.json();
    } catch {
      // Assume the defaults; the first call will tell.
    }
  }
  const notice = sessionStorage.getItem(NOTICE_KEY) ?? "";
  sessionStorage.removeItem(NOTICE_KEY);
  const c = loadCredentials();
  if (c && c.mode === state.config.auth) await start(c);
  else showSignin(notice);
}

void boot();
