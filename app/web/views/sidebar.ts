// The sidebar: who is signed in, the rooms and direct conversations (with unread badges), who is
// online; the page title with the unread count; the narrow-screen drawer. Its buttons carry
// data-room or data-user, and main.ts handles the clicks of each whole list.
import { el, fillList, ui } from "../dom.ts";
import { label, state, type Room } from "../store.ts";
import { UNREAD_CAP } from "../../rules/unread.ts";

export function renderMe(): void {
  ui.meName.textContent = state.me;
  ui.meRegion.textContent = state.config.region ? ` · ${state.config.region}` : "";
}

export function renderTitle(): void {
  const unread = [...state.rooms.values()].reduce((n, r) => n + r.unread, 0);
  document.title = `${unread ? `(${unread}) ` : ""}${state.active ? label(state.active) + " · " : ""}edgechat`;
}

function roomItem(r: Room): HTMLLIElement {
  const li = el("li");
  const b = el("button", "item" + (r.subscribed ? "" : " idle"));
  b.type = "button";
  b.dataset.key = r.name;
  b.dataset.room = r.name;
  if (r === state.active) b.setAttribute("aria-current", "page");
  if (r.peer) {
    const dot = el("span", state.online.includes(r.peer) ? "dot on" : "dot");
    dot.setAttribute("aria-hidden", "true");
    b.append(dot, el("span", "name", r.peer));
  } else {
    const hash = el("span", "sigil", "#");
    hash.setAttribute("aria-hidden", "true");
    b.append(hash, el("span", "name", r.name));
  }
  if (r.unread > 0 && r !== state.active) {
    const n = r.unread >= UNREAD_CAP ? "99+" : String(r.unread);
    const badge = el("span", r.mentions > 0 ? "badge mention" : "badge", r.mentions > 0 ? `@ ${n}` : n);
    badge.setAttribute("aria-label", `${n} unread${r.mentions > 0 ? `, ${r.mentions} mentioning you` : ""}`);
    b.append(badge);
  }
  li.append(b);
  return li;
}

function personItem(user: string): HTMLLIElement {
  const li = el("li");
  if (user === state.me) {
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
  li.append(b);
  return li;
}

export function renderLists(): void {
  const all = [...state.rooms.values()].filter((r) => r.listed || r.subscribed);
  const publics = all.filter((r) => !r.peer).sort((a, b) => a.name.localeCompare(b.name));
  const dms = all.filter((r) => r.peer).sort((a, b) => a.peer!.localeCompare(b.peer!));
  fillList(ui.roomList, publics.map(roomItem));
  fillList(ui.dmList, dms.map(roomItem));
  ui.dmEmpty.hidden = dms.length > 0;
  fillList(ui.onlineList, state.online.map(personItem));
  ui.onlineCount.textContent = String(state.online.length);
  renderTitle();
}

export function openNav(): void {
  if (!matchMedia("(max-width: 760px)").matches) return;
  ui.app.classList.add("nav-open");
  ui.scrim.hidden = false;
  ui.menu.setAttribute("aria-expanded", "true");
  ui.sidebar.querySelector<HTMLElement>("[aria-current], button")?.focus();
}

export function closeNav(refocus = false): void {
  if (!ui.app.classList.contains("nav-open")) return;
  ui.app.classList.remove("nav-open");
  ui.scrim.hidden = true;
  ui.menu.setAttribute("aria-expanded", "false");
  if (refocus) ui.menu.focus();
}
