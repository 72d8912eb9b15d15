// The active room's head (title, topic, the Room and Block buttons) and its panel: kind, title and
// topic, members with their roles, and what the signed-in user may do there. Only what their role
// allows is offered (docs/api.md, "Rooms, roles and moderation"); the server checks it all again.
import { Role, RoomKind, type Member } from "../../gen/chat/v1/chat_pb.ts";
import { FOR_GOOD_MS } from "../../rules/changes.ts";
import { el, fillList, ui } from "../dom.ts";
import { label, state } from "../store.ts";

const RANK: Record<number, number> = { [Role.UNSPECIFIED]: 0, [Role.MEMBER]: 1, [Role.ADMIN]: 2, [Role.OWNER]: 3 };
const ROLE_NAME: Record<number, string> = { [Role.MEMBER]: "member", [Role.ADMIN]: "admin", [Role.OWNER]: "owner" };

/** The signed-in user's role in the active room's details. */
export function myRole(): Role {
  const d = state.active && state.details.get(state.active.name);
  return d?.desc.yourRole ?? Role.UNSPECIFIED;
}

export function renderRoomHead(): void {
  const r = state.active;
  const d = r && state.details.get(r.name);
  const title = d?.desc.title;
  ui.roomTitle.textContent = r ? `${label(r)}${title ? ` · ${title}` : ""}` : "";
  const topic = d?.desc.topic ?? "";
  ui.roomTopic.textContent = topic;
  ui.roomTopic.hidden = !topic;
  ui.roomInfo.hidden = !r || !!r.peer;
  ui.roomInfo.setAttribute("aria-expanded", String(state.panelOpen && !ui.roomInfo.hidden));
  ui.block.hidden = !r?.peer;
  if (r?.peer) ui.block.textContent = state.blocked.has(r.peer) ? `Unblock ${r.peer}` : `Block ${r.peer}`;
  renderMute();
}

let unmuteTimer: ReturnType<typeof setTimeout> | undefined;

/** A muted user is not offered the message box: it says until when instead. */
function renderMute(): void {
  const r = state.active;
  const d = r && state.details.get(r.name);
  const until = d?.members.find((m) => m.user === state.me)?.mutedUntil;
  const ms = until ? Number(until.seconds) * 1000 : 0;
  const muted = ms > Date.now();
  clearTimeout(unmuteTimer);
  ui.text.disabled = ui.send.disabled = muted;
  if (!r) return;
  if (!muted) {
    ui.text.placeholder = `Message ${label(r)}`;
    return;
  }
  ui.text.placeholder = `You are muted in ${label(r)} ${ms >= FOR_GOOD_MS ? "for good" : `until ${new Date(ms).toLocaleString()}`}`;
  // The mute ends by itself: offer the box again then.
  if (ms - Date.now() < 86_400_000) unmuteTimer = setTimeout(renderMute, ms - Date.now() + 50);
}

function memberItem(m: Member, mine: Role): HTMLLIElement {
  const li = el("li", "member");
  li.dataset.key = m.user;
  li.append(el("span", "name", m.user === state.me ? `${m.user} (you)` : m.user));
  if (m.role) li.append(el("span", `role ${ROLE_NAME[m.role]}`, ROLE_NAME[m.role]));
  if (m.mutedUntil) li.append(el("span", "role muted-badge", "muted"));
  // Owners act on anyone else; admins on those below them.
  const over = m.user !== state.me && (mine === Role.OWNER || RANK[mine] > RANK[m.role]) && RANK[mine] >= RANK[Role.ADMIN];
  if (!over) return li;
  const actions = el("span", "member-actions");
  const button = (action: string, text: string) => {
    const b = el("button", "quiet small", text);
    b.type = "button";
    b.dataset.action = action;
    b.dataset.user = m.user;
    b.setAttribute("aria-label", `${text} ${m.user}`);
    actions.append(b);
  };
  if (mine === Role.OWNER) {
    if (m.role !== Role.ADMIN) button("make-admin", "Make admin");
    if (m.role === Role.ADMIN) button("make-member", "Make member");
    if (m.role !== Role.OWNER) button("make-owner", "Make owner");
  }
  if (m.role) button("remove", "Remove");
  button(m.mutedUntil ? "unmute" : "mute", m.mutedUntil ? "Unmute" : "Mute…");
  button("ban", "Ban…");
  li.append(actions);
  return li;
}

export function renderPanel(): void {
  const r = state.active;
  const open = state.panelOpen && !!r && !r.peer;
  ui.roomPanel.hidden = !open;
  ui.app.classList.toggle("panel-open", open);
  renderRoomHead();
  if (!open || !r) return;
  const d = state.details.get(r.name);
  ui.panelTitle.textContent = label(r);
  const created = !!d && d.desc.kind !== RoomKind.UNSPECIFIED;
  const mine = myRole();
  const admin = RANK[mine] >= RANK[Role.ADMIN];
  ui.panelKind.textContent = !d
    ? "Loading…"
    : !created
      ? "A public room nobody owns: anyone may read and write it. Create a room to have owners, members and moderation."
      : `${d.desc.kind === RoomKind.PRIVATE ? "Private: members only." : "Public: anyone may join."} Created by ${d.desc.createdBy || "the server"}.${mine ? ` You are ${mine === Role.ADMIN || mine === Role.OWNER ? "an" : "a"} ${ROLE_NAME[mine]}.` : ""}`;
  ui.roomEdit.hidden = !created || !admin;
  ui.roomEditPrivateField.hidden = mine !== Role.OWNER;
  if (created && admin && !ui.roomEdit.contains(document.activeElement)) {
    ui.roomEditTitle.value = d.desc.title;
    ui.roomEditTopic.value = d.desc.topic;
    ui.roomEditPrivate.checked = d.desc.kind === RoomKind.PRIVATE;
  }
  fillList(ui.memberList, created ? d.members.map((m) => memberItem(m, mine)) : []);
  ui.inviteForm.hidden = !created || !admin;
  const m = state.moderating;
  ui.moderateForm.hidden = !m || !admin;
  if (m) {
    ui.moderateTitle.textContent = m.action === "ban" ? `Ban ${m.user} from ${label(r)}` : `Mute ${m.user} in ${label(r)}`;
    ui.moderateGo.textContent = m.action === "ban" ? `Ban ${m.user}` : `Mute ${m.user}`;
    ui.moderateReason.hidden = ui.moderateReasonLabel.hidden = m.action !== "ban";
  }
  const banned = created ? d.banned : [];
  ui.bannedSection.hidden = banned.length === 0;
  fillList(
    ui.bannedList,
    banned.map((b) => {
      const li = el("li", "member");
      li.dataset.key = b.user;
      li.append(el("span", "name", b.user), el("span", "hint", b.reason ? ` ${b.reason}` : ""));
      const unban = el("button", "quiet small", "Unban");
      unban.type = "button";
      unban.dataset.action = "unban";
      unban.dataset.user = b.user;
      unban.setAttribute("aria-label", `Unban ${b.user}`);
      li.append(unban);
      return li;
    }),
  );
  // The last owner hands over before leaving: not offered until someone else owns it too.
  const owners = created ? d.members.filter((x) => x.role === Role.OWNER).length : 0;
  ui.leaveRoom.hidden = !created || mine === Role.UNSPECIFIED || (mine === Role.OWNER && owners < 2);
  ui.deleteRoom.hidden = mine !== Role.OWNER;
}
