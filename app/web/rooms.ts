// What the room panel and the room head do: load a room's details, create, edit, invite, change
// roles, remove, mute, ban, unban, leave, delete, and block a person. Each action is one RPC; the
// change it makes comes back to every page as a history entry, which reloads the details.
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { Role, RoomKind, type Message } from "../gen/chat/v1/chat_pb.ts";
import { describe, isAuthError, isValidUserId, USER_ID_RULE } from "./api.ts";
import { ui } from "./dom.ts";
import { state } from "./store.ts";
import { renderPanel, renderRoomHead } from "./views/room-panel.ts";

export interface RoomHooks {
  /** Shows a room, joining it first. */
  openRoom(name: string): Promise<void>;
  /** The page is out of a room (left, banned, removed, deleted): stop streaming it, say why. */
  leftRoom(name: string, why: string): void;
  signOut(notice?: string): void;
}

let hooks: RoomHooks;

/** GetRoom, and ListMembers for a created room; then the head and panel render. */
export async function loadDetails(name: string): Promise<void> {
  try {
    const { room: desc } = await state.client.getRoom({ room: name });
    if (!desc) return;
    const created = desc.kind === RoomKind.PUBLIC || desc.kind === RoomKind.PRIVATE;
    const { members, banned } = created ? await state.client.listMembers({ room: name }) : { members: [], banned: [] };
    state.details.set(name, { desc, members, banned });
  } catch (err) {
    if (isAuthError(err)) return hooks.signOut(describe(err));
    if (state.active?.name === name && state.panelOpen) ui.panelError.textContent = describe(err);
    return;
  }
  if (state.active?.name === name) renderPanel();
}

const reloads = new Map<string, ReturnType<typeof setTimeout>>();
/** A history entry that records a change: the room's details are out of date. */
export function onChange(m: Message): void {
  if (!m.change) return;
  clearTimeout(reloads.get(m.room));
  reloads.set(
    m.room,
    setTimeout(() => {
      reloads.delete(m.room);
      void loadDetails(m.room);
    }, 100),
  );
}

/** Runs one call for the panel: its error shows there; the details reload after it. */
async function act(call: () => Promise<unknown>): Promise<boolean> {
  ui.panelError.textContent = "";
  try {
    await call();
  } catch (err) {
    if (isAuthError(err)) hooks.signOut(describe(err));
    else ui.panelError.textContent = describe(err);
    return false;
  }
  if (state.active) await loadDetails(state.active.name);
  return true;
}

/** The join form with "private" ticked: CreateRoom, then show it. */
export async function createPrivate(name: string): Promise<string | undefined> {
  try {
    await state.client.createRoom({ name, kind: RoomKind.PRIVATE });
  } catch (err) {
    return describe(err);
  }
  await hooks.openRoom(name);
  return undefined;
}

export async function loadBlocked(): Promise<void> {
  try {
    state.blocked = new Set((await state.client.listBlocked({})).users);
    renderRoomHead();
  } catch {
    // Shown as not blocked; the next toggle tells.
  }
}

export function wireRooms(h: RoomHooks): void {
  hooks = h;
  const active = () => state.active?.name ?? "";

  ui.roomInfo.addEventListener("click", () => {
    state.panelOpen = !state.panelOpen;
    state.moderating = undefined;
    ui.panelError.textContent = "";
    renderPanel();
    if (state.panelOpen && state.active) void loadDetails(state.active.name);
  });
  ui.panelClose.addEventListener("click", () => {
    state.panelOpen = false;
    renderPanel();
    ui.roomInfo.focus();
  });

  ui.roomEdit.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const d = state.details.get(active());
    if (!d) return;
    const kind = ui.roomEditPrivateField.hidden ? RoomKind.UNSPECIFIED : ui.roomEditPrivate.checked ? RoomKind.PRIVATE : RoomKind.PUBLIC;
    void act(() => state.client.updateRoom({ room: active(), title: ui.roomEditTitle.value.trim(), topic: ui.roomEditTopic.value.trim(), kind }));
  });

  ui.inviteForm.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const user = ui.inviteName.value.trim();
    if (!isValidUserId(user)) {
      ui.panelError.textContent = `A user id is ${USER_ID_RULE}.`;
      return;
    }
    void act(() => state.client.addMember({ room: active(), user })).then((ok) => ok && (ui.inviteName.value = ""));
  });

  const onAction = (ev: Event) => {
    const b = (ev.target as Element).closest<HTMLElement>("button[data-action]");
    if (!b?.dataset.user) return;
    const user = b.dataset.user;
    const room = active();
    const role = (r: Role) => () => state.client.setRole({ room, user, role: r });
    const calls: Record<string, () => Promise<unknown>> = {
      "make-admin": role(Role.ADMIN),
      "make-member": role(Role.MEMBER),
      "make-owner": role(Role.OWNER),
      remove: () => state.client.removeMember({ room, user }),
      unmute: () => state.client.unmute({ room, user }),
      unban: () => state.client.unban({ room, user }),
    };
    const action = b.dataset.action!;
    if (action === "ban" || action === "mute") {
      state.moderating = { user, action };
      ui.moderateReason.value = "";
      renderPanel();
      ui.moderateFor.focus();
      return;
    }
    if (calls[action]) void act(calls[action]);
  };
  ui.memberList.addEventListener("click", onAction);
  ui.bannedList.addEventListener("click", onAction);

  ui.moderateForm.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const m = state.moderating;
    if (!m) return;
    const seconds = Number(ui.moderateFor.value);
    const until = seconds > 0 ? timestampFromMs(Date.now() + seconds * 1000) : undefined;
    const room = active();
    const call =
      m.action === "ban"
        ? () => state.client.ban({ room, user: m.user, until, reason: ui.moderateReason.value.trim() })
        : () => state.client.mute({ room, user: m.user, until });
    void act(call).then((ok) => {
      if (!ok) return;
      state.moderating = undefined;
      renderPanel();
    });
  });
  ui.moderateCancel.addEventListener("click", () => {
    state.moderating = undefined;
    renderPanel();
  });

  ui.leaveRoom.addEventListener("click", () => {
    const room = active();
    void act(() => state.client.removeMember({ room, user: state.me })).then((ok) => ok && hooks.leftRoom(room, `You left ${room}.`));
  });
  // Two steps: the first click asks, the second deletes.
  ui.deleteRoom.addEventListener("click", () => {
    const room = active();
    if (ui.deleteRoom.dataset.confirm !== room) {
      ui.deleteRoom.dataset.confirm = room;
      ui.deleteRoom.textContent = "Delete it and its history for good?";
      return;
    }
    delete ui.deleteRoom.dataset.confirm;
    ui.deleteRoom.textContent = "Delete the room";
    void act(() => state.client.deleteRoom({ room }));
  });

  ui.block.addEventListener("click", () => {
    const peer = state.active?.peer;
    if (!peer) return;
    const blocked = state.blocked.has(peer);
    void (blocked ? state.client.unblock({ user: peer }) : state.client.block({ user: peer })).then(
      () => {
        if (blocked) state.blocked.delete(peer);
        else state.blocked.add(peer);
        renderRoomHead();
      },
      (err) => (ui.sendError.textContent = describe(err)),
    );
  });
}
