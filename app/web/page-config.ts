// What the server tells the page about itself, shared by both sides: the server puts it in the
// page (a meta tag) and serves it at /config.json; the page reads it before its first paint.

export interface ServerConfig {
  /** How this server signs people in. */
  auth: "dev" | "jwt";
  region: string;
  /** How often an idle stream gets a heartbeat event. */
  heartbeat_seconds?: number;
}

/** The name of the page's meta tag whose content is the config as JSON. */
export const CONFIG_META = "edgechat-config";
