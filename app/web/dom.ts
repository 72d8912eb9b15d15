// The page's elements (index.html) by role, and the two helpers every view builds with.

const $ = <T extends HTMLElement = HTMLElement>(id: string) => document.getElementById(id) as T;

export const ui = {
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

export function el<K extends keyof HTMLElementTagNameMap>(tag: K, cls?: string, text?: string): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

/** Rebuilds a list, keeping keyboard focus on the item that had it. */
export function fillList(list: HTMLUListElement, items: HTMLLIElement[]): void {
  const focused = list.contains(document.activeElement) ? (document.activeElement as HTMLElement).dataset.key : undefined;
  list.replaceChildren(...items);
  if (focused) list.querySelector<HTMLElement>(`[data-key="${CSS.escape(focused)}"]`)?.focus();
}
