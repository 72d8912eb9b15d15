// The connection line above the log ("Connecting…", "Offline, retrying in 3 s"), and the sign-in card.
import { ui } from "../dom.ts";
import type { LiveStatus } from "../live.ts";
import { state } from "../store.ts";

let ticker: ReturnType<typeof setInterval> | undefined;

export function renderStatus(s: LiveStatus): void {
  clearInterval(ticker);
  ui.app.dataset.conn = s.state;
  const show = (text: string) => {
    ui.conn.textContent = text;
    ui.conn.classList.toggle("visible", text !== "");
  };
  switch (s.state) {
    case "live":
    case "stopped":
      return show("");
    case "connecting":
      return show("Connecting…");
    case "retrying": {
      const tick = () => show(`Offline, retrying in ${Math.max(1, Math.ceil((s.at - Date.now()) / 1000))} s`);
      tick();
      ui.conn.title = s.reason;
      ticker = setInterval(tick, 1000);
      return;
    }
  }
}

export function showSignin(error = ""): void {
  ui.loading.hidden = true;
  ui.app.hidden = true;
  ui.signin.hidden = false;
  const dev = state.config.auth === "dev";
  ui.signinNameField.hidden = !dev;
  ui.signinTokenField.hidden = dev;
  ui.signinIntro.textContent = dev ? "This server runs in dev mode: pick any name to chat as." : "Paste an access token to sign in.";
  ui.signinError.textContent = error;
  (dev ? ui.signinName : ui.signinToken).focus();
}
