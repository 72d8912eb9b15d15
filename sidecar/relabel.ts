// Prometheus `metric_relabel_configs`, ported from prometheus/prometheus model/relabel/relabel.go
// (Config.Validate, relabel()) and the labels.Builder it runs on. The references below name the Go
// code each piece mirrors, so the two can be compared line by line.
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { isAlias, isMap, isScalar, isSeq, parseDocument, type Document } from "yaml";

export type Action = "replace" | "keep" | "drop" | "labelmap" | "labeldrop" | "labelkeep" | "hashmod" | "lowercase" | "uppercase" | "keepequal" | "dropequal";

export interface RelabelConfig {
  source_labels?: string[];
  separator?: string;
  regex?: string;
  target_label?: string;
  replacement?: string;
  modulus?: number;
  action?: Action;
}

export type Labels = Record<string, string>; // includes "__name__"

/**
 * Which label names are valid. Prometheus 3 defaults to "utf8" (any non-empty UTF-8 string);
 * "legacy" is `[a-zA-Z_][a-zA-Z0-9_]*`, Prometheus's `metric_name_validation_scheme: legacy`.
 * We default to legacy: the sidecar serves the Go client's schema in the classic text format,
 * where only legacy names can be written.
 */
export interface RelabelOptions {
  nameValidation?: "legacy" | "utf8";
}

const ACTIONS = new Set<string>([
  "replace",
  "keep",
  "drop",
  "labelmap",
  "labeldrop",
  "labelkeep",
  "hashmod",
  "lowercase",
  "uppercase",
  "keepequal",
  "dropequal",
]);
const FIELDS = new Set(["source_labels", "separator", "regex", "target_label", "replacement", "modulus", "action"]);
const DEFAULT = { separator: ";", regex: "(.*)", replacement: "$1", action: "replace" } as const;

const LEGACY_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
// relabelTargetLegacy is `^(?:(?:[a-zA-Z_]|\$(?:\{\w+\}|\w+))+\w*)+$`: a legacy name in which
// $1, ${1}, $name, ${name} may stand for characters. Same language, rewritten without nested
// quantifiers, which backtrack exponentially in JS (RE2 does not backtrack).
const LEGACY_TARGET = /^(?:[a-zA-Z_]|\$(?:\{\w+\}|\w))(?:\w|\$(?:\{\w+\}|\w))*$/;

type Rule = (lb: LabelBuilder) => boolean; // false = drop the series

/** Validates and compiles; throws naming the rule (0-based index) and the problem, as Prometheus refuses such configs. */
export function compileRelabel(configs: RelabelConfig[], options: RelabelOptions = {}): (labels: Labels) => Labels | undefined {
  if (!Array.isArray(configs)) throw new Error("metric_relabel_configs must be a list");
  const utf8 = options.nameValidation === "utf8";
  // model.LabelName.IsValid under the chosen scheme; utf8 = non-empty valid UTF-8.
  const validName = (s: string) => (utf8 ? s.length > 0 && s.isWellFormed() : LEGACY_NAME.test(s));
  // isValidLabelNameWithRegexVarFn: under utf8, `$` is an ordinary character of a name.
  const validNameWithVars = (s: string) => (utf8 ? validName(s) : LEGACY_TARGET.test(s));
  const rules = configs.map((c, i) => {
    try {
      return compileRule(c, validName, validNameWithVars);
    } catch (e) {
      throw new Error(`metric_relabel_configs[${i}]: ${(e as Error).message}`);
    }
  });
  return (labels) => {
    const lb = new LabelBuilder(labels);
    for (const rule of rules) if (!rule(lb)) return undefined;
    return lb.labels();
  };
}

/** YAML file: a top-level list of rules, or `{ metric_relabel_configs: [...] }`. An empty file is no rules. */
export function loadRelabelConfig(path: string): RelabelConfig[] {
  const doc = parseDocument(readFileSync(path, "utf8"));
  if (doc.errors.length > 0) throw new Error(`${path}: ${doc.errors[0]!.message}`);
  let top = toPlain(doc, doc.contents);
  if (top !== null && typeof top === "object" && !Array.isArray(top)) {
    const extra = Object.keys(top).filter((k) => k !== "metric_relabel_configs");
    if (extra.length > 0) throw new Error(`${path}: unknown key ${JSON.stringify(extra[0])}`);
    top = (top as Record<string, unknown>).metric_relabel_configs;
  }
  if (top === null || top === undefined) return [];
  if (!Array.isArray(top)) throw new Error(`${path}: expected a list of relabel rules or { metric_relabel_configs: [...] }`);
  return top as RelabelConfig[];
}

// Scalars become strings from their source text, as Go's yaml.v2 does when it decodes into a
// string field: `regex: true` is the regex "true" and `replacement: 1.0` is "1.0", not 1.
// Null stays null: Prometheus then uses the Go zero value ("", 0), not the default; that is
// why `regex:` (empty) matches only the empty string there. modulus keeps its number.
function toPlain(doc: Document, node: unknown, key?: string): unknown {
  if (isAlias(node)) return toPlain(doc, node.resolve(doc), key);
  if (isMap(node)) {
    const out: Record<string, unknown> = {};
    for (const pair of node.items) {
      const k = String(toPlain(doc, pair.key));
      out[k] = toPlain(doc, pair.value, k);
    }
    return out;
  }
  if (isSeq(node)) return node.items.map((item) => toPlain(doc, item));
  if (isScalar(node)) {
    if (node.value === null) return null;
    if (key === "modulus" || typeof node.value === "string") return node.value;
    return node.source ?? String(node.value);
  }
  return node ?? null; // an empty document or value
}

function compileRule(raw: RelabelConfig, validName: (s: string) => boolean, validNameWithVars: (s: string) => boolean): Rule {
  if (raw === null || typeof raw !== "object" || Array.isArray(raw)) throw new Error("a rule must be a mapping");
  const unknown = Object.keys(raw).find((k) => !FIELDS.has(k)); // Prometheus loads its config strictly
  if (unknown !== undefined) throw new Error(`unknown field ${JSON.stringify(unknown)}`);
  const r = raw as Record<string, unknown>;

  // An absent field takes DefaultRelabelConfig's value; an explicit null the Go zero value.
  const str = (field: string, dflt = ""): string => {
    const v = r[field];
    if (v === undefined) return dflt;
    if (v === null) return "";
    if (typeof v !== "string") throw new Error(`${field} must be a string`);
    return v;
  };
  const separator = str("separator", DEFAULT.separator);
  const targetLabel = str("target_label");
  const replacement = str("replacement", DEFAULT.replacement);
  const rawAction = r.action === undefined ? DEFAULT.action : str("action").toLowerCase(); // Action.UnmarshalYAML lowercases
  if (r.action !== null && !ACTIONS.has(rawAction)) throw new Error(`unknown relabel action ${JSON.stringify(r.action)}`);
  const action = rawAction as Action | "";

  const modulus = r.modulus ?? 0;
  // Go takes a uint64; we stop at 2^53 so the number is exact.
  if (typeof modulus !== "number" || !Number.isSafeInteger(modulus) || modulus < 0) {
    throw new Error(`modulus must be a non-negative integer up to 2^53-1, got ${JSON.stringify(r.modulus)}`);
  }
  const sourceLabels = r.source_labels ?? undefined;
  if (sourceLabels !== undefined) {
    if (!Array.isArray(sourceLabels)) throw new Error("source_labels must be a list of label names");
    for (const n of sourceLabels) {
      if (typeof n !== "string" || !validName(n)) throw new Error(`${JSON.stringify(n)} is not a valid label name`);
    }
  }
  const regex = compileRegex(r.regex === undefined ? DEFAULT.regex : str("regex"));

  // Config.Validate, in its order and with its messages.
  const q = JSON.stringify; // stands in for Go's %q
  const needsTarget = ["replace", "hashmod", "lowercase", "uppercase", "keepequal", "dropequal"].includes(action);
  const simpleTarget = ["lowercase", "uppercase", "keepequal", "dropequal"].includes(action);
  if (action === "") throw new Error("relabel action cannot be empty");
  if (modulus === 0 && action === "hashmod") throw new Error("relabel configuration for hashmod requires non-zero modulus");
  if (needsTarget && targetLabel === "") throw new Error(`relabel configuration for ${action} action requires 'target_label' value`);
  if (action === "replace" && !targetLabel.includes("$") && !validName(targetLabel)) {
    throw new Error(`${q(targetLabel)} is invalid 'target_label' for ${action} action`);
  }
  if (action === "replace" && targetLabel.includes("$") && !validNameWithVars(targetLabel)) {
    throw new Error(`${q(targetLabel)} is invalid 'target_label' for ${action} action`);
  }
  if (simpleTarget && !validName(targetLabel)) throw new Error(`${q(targetLabel)} is invalid 'target_label' for ${action} action`);
  if (simpleTarget && replacement !== DEFAULT.replacement) throw new Error(`'replacement' can not be set for ${action} action`);
  if (action === "labelmap" && !validNameWithVars(replacement)) {
    throw new Error(`${q(replacement)} is invalid 'replacement' for ${action} action`);
  }
  if (action === "hashmod" && !validName(targetLabel)) throw new Error(`${q(targetLabel)} is invalid 'target_label' for ${action} action`);
  if (
    (action === "keepequal" || action === "dropequal") &&
    (r.regex !== undefined || modulus !== 0 || separator !== DEFAULT.separator || replacement !== DEFAULT.replacement)
  ) {
    throw new Error(`${action} action requires only 'source_labels' and \`target_label\`, and no other fields`);
  }
  if (
    (action === "labeldrop" || action === "labelkeep") &&
    (sourceLabels !== undefined || targetLabel !== "" || modulus !== 0 || separator !== DEFAULT.separator || replacement !== DEFAULT.replacement)
  ) {
    throw new Error(`${action} action requires only 'regex', and no other fields`);
  }

  // relabel(): the source values joined; a missing label reads as "".
  const names = (sourceLabels ?? []) as string[];
  const joined = (lb: LabelBuilder) => names.map((n) => lb.get(n)).join(separator);
  switch (action) {
    case "keep":
      return (lb) => regex.test(joined(lb));
    case "drop":
      return (lb) => !regex.test(joined(lb));
    case "keepequal":
      return (lb) => lb.get(targetLabel) === joined(lb);
    case "dropequal":
      return (lb) => lb.get(targetLabel) !== joined(lb);
    case "replace":
      return (lb) => {
        const m = regex.exec(joined(lb));
        if (m === null) return true; // no match, no replacement
        const target = expand(targetLabel, m);
        if (!validName(target)) return true; // e.g. "${3}" expanded to ""
        lb.set(target, expand(replacement, m)); // "" deletes the label
        return true;
      };
    case "lowercase":
      return (lb) => (lb.set(targetLabel, goCase(joined(lb), false)), true);
    case "uppercase":
      return (lb) => (lb.set(targetLabel, goCase(joined(lb), true)), true);
    case "hashmod": {
      const mod = BigInt(modulus);
      return (lb) => {
        // binary.BigEndian.Uint64(sum[8:]): the last 8 bytes of the MD5 digest, big-endian.
        const sum = createHash("md5").update(joined(lb), "utf8").digest();
        lb.set(targetLabel, String(sum.readBigUInt64BE(8) % mod));
        return true;
      };
    }
    // The label actions walk a snapshot of the labels taken before the rule, like Builder.Range.
    case "labelmap":
      return (lb) => {
        for (const [name, value] of lb.entries()) {
          const m = regex.exec(name);
          // ReplaceAllString on a fully anchored regex is one expansion of the single match.
          // The result is not validated (Prometheus does not either).
          if (m !== null) lb.set(expand(replacement, m), value);
        }
        return true;
      };
    case "labeldrop":
      return (lb) => {
        for (const [name] of lb.entries()) if (regex.test(name)) lb.del(name);
        return true;
      };
    case "labelkeep":
      return (lb) => {
        for (const [name] of lb.entries()) if (!regex.test(name)) lb.del(name);
        return true;
      };
  }
}

/**
 * Prometheus anchors every regex as `^(?s:re)$` (current versions; older ones used `^(?:re)$`,
 * without `.` matching newlines) and compiles it with Go's RE2. We compile the same shape with
 * JS RegExp, whose syntax differs for some constructs:
 * - translated here: `(?P<name>` becomes `(?<name>`; a leading `(?i)` (or other flags among i, m, s)
 *   becomes a `(?i:...)` group, meaning the same; `\:` and other escaped punctuation RE2 accepts
 *   but a Unicode-mode JS regex refuses become `\xHH`.
 * - refused by JS, accepted by RE2: inline flags after the start (`a(?i)b`), `\A`, `\z`, `\Q..\E`,
 *   `\pL` (write `\p{L}`), `\x{41}`, `[[:alpha:]]`, a literal `{` or `]` left unescaped.
 * - accepted by JS, refused by Prometheus: lookaround, backreferences, repeats over 1000.
 * - silently different: `\s` (JS adds Unicode spaces and \v), details of case folding.
 * The `u` flag makes `.` and classes match code points, as RE2 matches runes.
 */
function compileRegex(re: string): RegExp {
  let src = "";
  for (let i = 0; i < re.length; i++) {
    const c = re[i]!;
    if (c === "\\" && i + 1 < re.length) {
      const n = re[++i]!;
      const punct = /[!-/:-@[-`{-~]/.test(n) && !"^$\\.*+?()[]{}|/".includes(n);
      src += punct ? `\\x${n.charCodeAt(0).toString(16).padStart(2, "0")}` : c + n;
    } else if (re.startsWith("(?P<", i)) {
      src += "(?<";
      i += 3;
    } else {
      src += c;
    }
  }
  const flags = /^\(\?([ims]+(?:-[ims]+)?|-[ims]+)\)/.exec(src);
  if (flags) src = `(?${flags[1]}:${src.slice(flags[0].length)})`;
  try {
    return new RegExp(`^(?:${src})$`, "su");
  } catch (e) {
    throw new Error(`invalid regex ${JSON.stringify(re)}: ${(e as Error).message}`);
  }
}

/**
 * Go's Regexp.Expand: `$$` is `$`; `$name` or `${name}`, where name is the longest run of letters,
 * digits and `_` (so `$1x` is the group named "1x", which is empty; write `${1}x`); an all-digit
 * name without a leading zero is a group number; a missing or unmatched group gives "";
 * a `$` not followed by a name is kept as is.
 */
function expand(template: string, m: RegExpExecArray): string {
  return template.replace(/\$(?:(\$)|\{([\p{L}\p{Nd}_]+)\}|([\p{L}\p{Nd}_]+))?/gu, (all, dollar, braced, bare) => {
    if (dollar !== undefined) return "$";
    const name: string | undefined = braced ?? bare;
    if (name === undefined) return all;
    // Go's extract() gives up on numbers of 10 digits or more (num >= 1e8 before the next digit).
    if (/^(?:0|[1-9][0-9]{0,8})$/.test(name)) return m[Number(name)] ?? "";
    return m.groups !== undefined && Object.hasOwn(m.groups, name) ? (m.groups[name] ?? "") : "";
  });
}

// Go's strings.ToLower/ToUpper map each rune by Unicode's simple case mapping. JS applies the full
// (SpecialCasing) mapping, which can lengthen a character ("ß" -> "SS") or depend on context
// (final sigma), so we map one code point at a time and keep a character whose full mapping is
// longer, except the few whose simple mapping differs from both: İ lowers to i, and Greek
// vowels with ypogegrammeni upper-case to their prosgegrammeni form.
function goCase(s: string, upper: boolean): string {
  let out = "";
  for (const ch of s) {
    const mapped = upper ? ch.toUpperCase() : ch.toLowerCase();
    if ([...mapped].length === 1) out += mapped;
    else out += simpleOnly(ch.codePointAt(0)!, upper) ?? ch;
  }
  return out;
}

function simpleOnly(cp: number, upper: boolean): string | undefined {
  if (!upper) return cp === 0x130 ? "i" : undefined;
  if ((cp >= 0x1f80 && cp <= 0x1f87) || (cp >= 0x1f90 && cp <= 0x1f97) || (cp >= 0x1fa0 && cp <= 0x1fa7)) {
    return String.fromCodePoint(cp + 8);
  }
  return { 0x1fb3: "\u1fbc", 0x1fc3: "\u1fcc", 0x1ff3: "\u1ffc" }[cp];
}

/**
 * labels.Builder: empty values are absent. Its iteration order matters to labelmap when two names
 * map to the same target (the last write wins), so we keep it: the input labels sorted by name,
 * then labels set since, in the order first set (setting an input label moves it to the end).
 */
class LabelBuilder {
  private readonly map = new Map<string, string>();
  private readonly added = new Set<string>();

  constructor(input: Labels) {
    // Builder.Reset deletes empty-valued labels up front. (JS sorts by UTF-16 units, Go by bytes:
    // the same for every name outside the astral planes.)
    for (const name of Object.keys(input).sort()) if (input[name] !== "") this.map.set(name, input[name]!);
  }

  get(name: string): string {
    return this.map.get(name) ?? "";
  }

  set(name: string, value: string): void {
    if (value === "") return this.del(name);
    if (!this.added.has(name)) {
      this.map.delete(name);
      this.added.add(name);
    }
    this.map.set(name, value);
  }

  del(name: string): void {
    this.map.delete(name);
    this.added.delete(name);
  }

  entries(): [string, string][] {
    return [...this.map];
  }

  labels(): Labels {
    return Object.fromEntries([...this.map].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  }
}
