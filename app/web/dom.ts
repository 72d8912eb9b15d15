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
  joinPrivate: $<HTMLInputElement>("join-private"),
  dmList: $<HTMLUListElement>("dm-list"),
  dmEmpty: $("dm-empty"),
  onlineList: $<HTMLUListElement>("online-list"),
  onlineCount: $("online-count"),
  roomTitle: $("room-title"),
  roomTopic: $("room-topic"),
  block: $<HTMLButtonElement>("block"),
  roomInfo: $<HTMLButtonElement>("room-info"),
  roomPanel: $("room-panel"),
  panelClose: $<HTMLButtonElement>("panel-close"),
  panelTitle: $("panel-h"),
  panelKind: $("panel-kind"),
  roomEdit: $<HTMLFormElement>("room-edit"),
  roomEditTitle: $<HTMLInputElement>("room-edit-title"),
  roomEditTopic: $<HTMLInputElement>("room-edit-topic"),
  roomEditPrivateField: $("room-edit-private-field"),
  roomEditPrivate: $<HTMLInputElement>("room-edit-private"),
  memberList: $<HTMLUListElement>("member-list"),
  inviteForm: $<HTMLFormElement>("invite-form"),
  inviteName: $<HTMLInputElement>("invite-name"),
  moderateForm: $<HTMLFormElement>("moderate-form"),
  moderateTitle: $("moderate-title"),
  moderateFor: $<HTMLSelectElement>("moderate-for"),
  moderateReason: $<HTMLInputElement>("moderate-reason"),
  moderateReasonLabel: $("moderate-reason-label"),
  moderateGo: $<HTMLButtonElement>("moderate-go"),
  moderateCancel: $<HTMLButtonElement>("moderate-cancel"),
  bannedSection: $("banned-section"),
  bannedList: $<HTMLUListElement>("banned-list"),
  panelError: $("panel-error"),
  leaveRoom: $<HTMLButtonElement>("leave-room"),
  deleteRoom: $<HTMLButtonElement>("delete-room"),
  conn: $("conn"),
  log: $("log"),
  older: $<HTMLButtonElement>("older"),
  logNote: $("log-note"),
  typing: $("typing"),
  replying: $("replying"),
  replyingText: $("replying-text"),
  replyingCancel: $<HTMLButtonElement>("replying-cancel"),
  composer: $<HTMLFormElement>("composer"),
  textLabel: $("text-label"),
  text: $<HTMLTextAreaElement>("text"),
  send: $<HTMLButtonElement>("send"),
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
