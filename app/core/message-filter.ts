// The message filter hook's seam: a check the core makes before it stores a user's message or edit,
// which may accept it, reject it (the sender gets permission_denied with the reason) or rewrite its
// text. The HTTP hook is app/webhooks/filter.ts.
export interface FilterInput {
  kind: "message" | "edit";
  room: string;
  from: string;
  text: string;
  /** The message answered (a message) or edited (an edit); 0: none. */
  seq: bigint;
}

export interface MessageFilter {
  /** The text to store: the same, or rewritten; throws a ConnectError to refuse the message. */
  check(input: FilterInput): Promise<string>;
}
