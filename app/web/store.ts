// The page's one state store: who is signed in, the rooms with their messages by seq (so a message
// can never be shown twice), the active room, who is online. The views read it; the actions in
// main.ts change it and then ask the views concerned to render. No DOM here.
import type { Client } from "@connectrpc/connect";
import type { BannedUser, ChatService, Member, Message, Room as RoomDesc } from "../gen/chat/v1/chat_pb.ts";
import { isDmRoom, isPublicRoomName, type Credentials, type ServerConfig } from "./api.ts";
import { mentions, UNREAD_CAP } from "../rules/unread.ts";
import type { Live } from "./live.ts";

export interface Room {
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
  /** Of the unread, those that mention the user. */
  mentions: number;
  /** How far the user has read the room, on any device (the server's read state). */
  lastRead: bigint;
  /** The newest seq this page told the server it read (undefined: none yet). */
  reported?: bigint;
  /** Where the "new messages" line goes: the read state when the room was opened. */
  markerAt?: bigint;
  /** Who is typing, until when (ms). */
  typing: Map<string, number>;
  /** Why the page left the room (a ban, a kick, a deletion), shown in its log. */
  notice?: string;
}

/** A room as created (GetRoom) with its members (ListMembers): what the room panel shows. */
export interface RoomDetails {
  desc: RoomDesc;
  members: Member[];
  banned: BannedUser[];
}

export const VIEW_KEY = "edgechat.view";
export const NOTICE_KEY = "edgechat.notice";

export const state = {
  config: { auth: "dev", region: "" } as ServerConfig,
  creds: undefined as Credentials | undefined,
  client: undefined as unknown as Client<typeof ChatService>,
  live: undefined as Live | undefined,
  me: "",
  rooms: new Map<string, Room>(),
  active: undefined as Room | undefined,
  online: [] as string[],
  /** GetRoom and ListMembers of the rooms looked at, by name. */
  details: new Map<string, RoomDetails>(),
  panelOpen: false,
  /** The ban or mute being filled in, in the room panel. */
  moderating: undefined as { user: string; action: "ban" | "mute" } | undefined,
  /** The users this user blocked (ListBlocked). */
  blocked: new Set<string>(),
  /** The message the next send answers. */
  replyTo: undefined as Message | undefined,
  /** The message of this user's that the box is editing (the next send replaces its text). */
  editing: undefined as Message | undefined,
};

export const label = (r: Room) => (r.peer ? `@${r.peer}` : `#${r.name}`);

/** The room of that name, made (empty) on first mention. */
export function room(name: string): Room {
  let r = state.rooms.get(name);
  if (!r) {
    let peer: string | undefined;
    if (isDmRoom(name)) {
      const [a, b] = name.slice(3).split(":");
      peer = a === state.me ? b : a;
    }
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
      mentions: 0,
      lastRead: 0n,
      typing: new Map(),
    };
    state.rooms.set(name, r);
  }
  return r;
}

/**
 * Takes a message's newer state (from a change entry, or an edit, delete or reaction answered) if
 * the room holds the message in an older one: of two states, the higher version is the newer.
 */
export function takeNewer(r: Room, m: Message): boolean {
  const held = r.msgs.get(m.seq);
  if (!held || held.update || held.change || m.version <= held.version) return false;
  r.msgs.set(m.seq, m);
  return true;
}

/** Holds a message (or a change entry, which keeps the seqs gapless) unless the room has its seq already; true when it is new. */
export function hold(r: Room, m: Message): boolean {
  if (r.msgs.has(m.seq)) return false;
  r.msgs.set(m.seq, m);
  if (r.maxSeq === undefined || m.seq > r.maxSeq) r.maxSeq = m.seq;
  if (r.minSeq === undefined || m.seq < r.minSeq) r.minSeq = m.seq;
  return true;
}

/**
 * The room's unread messages and mentions from what the page holds after its read state; with
 * messages after it that the page does not hold, the server's counts stand.
 */
export function recount(r: Room): void {
  if (r.maxSeq !== undefined && r.lastRead >= r.maxSeq) {
    r.unread = 0;
    r.mentions = 0;
    return;
  }
  if (r.minSeq === undefined || r.minSeq > r.lastRead + 1n) return;
  let unread = 0;
  let mentioned = 0;
  for (const m of r.msgs.values()) {
    if (m.seq <= r.lastRead || m.change || m.update || m.deleted || m.from === state.me) continue;
    unread++;
    if (mentions(m.text, state.me)) mentioned++;
  }
  r.unread = Math.min(unread, UNREAD_CAP);
  r.mentions = mentioned;
}

export function subscribedNames(): string[] {
  return [...state.rooms.values()].filter((r) => r.subscribed).map((r) => r.name);
}

/** The rooms joined and the active one, kept across reloads of the tab. */
export function saveView(): void {
  sessionStorage.setItem(VIEW_KEY, JSON.stringify({ rooms: subscribedNames(), active: state.active?.name }));
}

export function loadView(): { rooms: string[]; active?: string } {
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
