// Prometheus text exposition format 0.0.4 (what prom-client writes) in and out, plus OpenMetrics 1.0 out.
// Hand-written rather than a dependency: the grammar is line-based and small. The parser follows
// client_golang's expfmt TextParser, except that a bad line costs only that line, never the scrape.

export type MetricType = "counter" | "gauge" | "histogram" | "summary" | "untyped";
export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
  /** Milliseconds since the epoch, when the exposition carried one (prom-client never does). */
  timestampMs?: number;
}
export interface MetricFamily {
  name: string;
  type: MetricType;
  help: string;
  samples: Sample[];
}

export const TEXT_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";
export const OPENMETRICS_CONTENT_TYPE = "application/openmetrics-text; version=1.0.0; charset=utf-8";

const METRIC_NAME = /[a-zA-Z_:][a-zA-Z0-9_:]*/y;
const LABEL_NAME = /[a-zA-Z_][a-zA-Z0-9_]*/y;
// Go's strconv.ParseFloat as expfmt uses it: decimal only (expfmt rejects hex and "_"), inf/nan in any
// case (prom-client writes "Nan"), no sign on NaN.
const FLOAT = /^(?:[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|[+-]?inf(?:inity)?|nan)$/i;
const TYPES = new Set(["counter", "gauge", "histogram", "summary", "untyped"]);
// Which sample-name suffixes belong to a family of each type (the bare name is checked separately).
const SUFFIXES: Record<MetricType, string[]> = {
  counter: ["_total"],
  gauge: [],
  histogram: ["_bucket", "_sum", "_count"],
  summary: ["_sum", "_count"],
  untyped: [],
};

export function parseFloatToken(token: string): number | undefined {
  if (!FLOAT.test(token)) return undefined;
  const lower = token.toLowerCase();
  if (lower === "nan") return NaN;
  if (lower.endsWith("inf") || lower.endsWith("infinity")) return lower.startsWith("-") ? -Infinity : Infinity;
  const v = Number(token);
  return Number.isFinite(v) ? v : undefined; // "1e999" overflows: Go reports a range error, so do we
}

interface Entry {
  family: MetricFamily;
  typed: boolean;
  hasHelp: boolean;
  seen: Set<string>;
}

/** What one parse may hold: a body within the byte limit can still be hundreds of thousands of tiny series. */
export interface ParseLimits {
  /** Samples kept; past it parsing stops and onLimit is called. */
  maxSamples?: number;
  /** Labels on one sample; a sample with more is a bad line. */
  maxLabels?: number;
  onLimit?(): void;
}

/**
 * Parses Prometheus text format 0.0.4. Bad lines are skipped and reported via onBadLine, never
 * thrown. Parsing stops at `limits.maxSamples`, so that memory follows the limit, not the input.
 */
export function parseText(text: string, onBadLine?: (line: string, reason: string) => void, limits: ParseLimits = {}): MetricFamily[] {
  const maxSamples = limits.maxSamples ?? Infinity;
  const maxLabels = limits.maxLabels ?? Infinity;
  let samples = 0;
  const byName = new Map<string, Entry>();
  const families: MetricFamily[] = [];
  const entry = (name: string): Entry => {
    let e = byName.get(name);
    if (!e) {
      e = { family: { name, type: "untyped", help: "", samples: [] }, typed: false, hasHelp: false, seen: new Set() };
      byName.set(name, e);
      families.push(e.family);
    }
    return e;
  };
  const bad = (line: string, reason: string) => onBadLine?.(line, reason);

  for (const raw of text.split("\n")) {
    const line = raw.replace(/^[ \t]+/, "").replace(/\r$/, "");
    if (line === "") continue;
    if (line.startsWith("#")) {
      const reason = parseComment(line, entry, byName);
      if (reason) bad(raw, reason);
      continue;
    }
    const parsed = parseSampleLine(line, maxLabels);
    if (typeof parsed === "string") {
      bad(raw, parsed);
      continue;
    }
    if (++samples > maxSamples) {
      limits.onLimit?.();
      break;
    }
    const e = familyOf(parsed.name, byName) ?? entry(parsed.name);
    const reason = checkSample(e, parsed);
    if (reason) {
      bad(raw, reason);
      continue;
    }
    e.family.samples.push(parsed);
  }
  return families;
}

// Handles "# HELP", "# TYPE" and plain comments; returns the reason when the line is bad.
function parseComment(line: string, entry: (name: string) => Entry, byName: Map<string, Entry>): string | undefined {
  const m = /^#[ \t]*(HELP|TYPE)(?:[ \t]+|$)/.exec(line);
  if (!m) return undefined; // any other comment, "# EOF" and "# UNIT" included, carries nothing for us
  const keyword = m[1];
  let i = m[0].length;
  METRIC_NAME.lastIndex = i;
  const name = METRIC_NAME.exec(line)?.[0];
  if (!name) return `invalid metric name in ${keyword} line`;
  i += name.length;
  if (i < line.length && line[i] !== " " && line[i] !== "\t") return `invalid metric name in ${keyword} line`;
  const rest = line.slice(i).replace(/^[ \t]+/, "");
  if (keyword === "HELP") {
    const e = byName.get(name);
    if (e?.hasHelp) return `duplicate HELP line for ${name}`;
    const target = e ?? entry(name);
    target.hasHelp = true;
    target.family.help = unescapeHelp(rest);
    return undefined;
  }
  const type = rest.trimEnd();
  if (type === "") return `TYPE line for ${name} without a type`;
  // "unknown" is OpenMetrics' spelling of untyped; accepting it costs nothing.
  const normalized = type === "unknown" ? "untyped" : type;
  if (!TYPES.has(normalized)) return `unknown metric type "${type}"`;
  const e = byName.get(name);
  if (e?.typed) return `duplicate TYPE line for ${name}`;
  // Samples already filed as untyped cannot change type (expfmt rejects this too).
  if (e && e.family.samples.length > 0) return `TYPE line for ${name} after its samples`;
  const target = e ?? entry(name);
  target.typed = true;
  target.family.type = normalized as MetricType;
  return undefined;
}

// "\\" and "\n" are the only HELP escapes; any other backslash is kept as written (expfmt rejects the
// line, but losing a family's help text over a stray backslash helps nobody).
function unescapeHelp(s: string): string {
  return s.replace(/\\([\\n])/g, (_, c: string) => (c === "n" ? "\n" : "\\"));
}

/** The family a sample name belongs to: the exact name first, then a suffix of a typed family. */
function familyOf(name: string, byName: Map<string, Entry>): Entry | undefined {
  const exact = byName.get(name);
  if (exact) return exact;
  for (const suffix of ["_bucket", "_sum", "_count", "_total"]) {
    if (!name.endsWith(suffix) || name.length === suffix.length) continue;
    const base = byName.get(name.slice(0, -suffix.length));
    if (base && SUFFIXES[base.family.type].includes(suffix)) return base;
  }
  return undefined;
}

// Checks that keep the output valid: what expfmt would reject or silently drop is a bad line here.
function checkSample(e: Entry, s: Sample): string | undefined {
  const { type, name } = e.family;
  if (type === "histogram") {
    if (s.name === name) return `histogram sample ${s.name} lacks a _bucket, _sum or _count suffix`;
    if (s.name === name + "_bucket" && parseFloatToken(s.labels.le ?? "") === undefined) return `histogram bucket without a numeric le label`;
  }
  if (type === "summary" && s.name === name && parseFloatToken(s.labels.quantile ?? "") === undefined) {
    return `summary sample without a numeric quantile label`;
  }
  const key = s.name + JSON.stringify(Object.entries(s.labels).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  if (e.seen.has(key)) return `duplicate sample for ${s.name}`;
  e.seen.add(key);
  return undefined;
}

/** Parses `name{l="v",...} value [timestamp]`; returns the reason as a string when the line is bad. */
function parseSampleLine(line: string, maxLabels = Infinity): Sample | string {
  METRIC_NAME.lastIndex = 0;
  const name = METRIC_NAME.exec(line)?.[0];
  if (!name) return "invalid metric name";
  let i = skipBlank(line, name.length);
  const labels: Record<string, string> = {};
  if (line[i] === "{") {
    i++;
    for (;;) {
      i = skipBlank(line, i);
      if (i >= line.length) return "unterminated label set";
      if (line[i] === "}") break; // also allows the trailing comma expfmt accepts: {a="b",}
      LABEL_NAME.lastIndex = i;
      const label = LABEL_NAME.exec(line)?.[0];
      if (!label) return `invalid label name at column ${i + 1}`;
      if (label === "__name__") return `label name __name__ is reserved`;
      if (Object.hasOwn(labels, label)) return `duplicate label ${label}`;
      if (Object.keys(labels).length >= maxLabels) return `more than ${maxLabels} labels`;
      i = skipBlank(line, i + label.length);
      if (line[i] !== "=") return `expected '=' after label ${label}`;
      i = skipBlank(line, i + 1);
      if (line[i] !== '"') return `expected '"' to open the value of label ${label}`;
      const value = readLabelValue(line, i + 1);
      if (typeof value === "string") return value;
      labels[label] = value.text;
      i = skipBlank(line, value.end);
      if (line[i] === ",") i++;
      else if (line[i] === "}") break;
      else return i >= line.length ? "unterminated label set" : `expected ',' or '}' after label ${label}`;
    }
    i++; // past '}'
  } else if (i === name.length && i < line.length && line[i] !== " " && line[i] !== "\t") {
    return "invalid metric name";
  }
  const tokens = line
    .slice(i)
    .trim()
    .split(/[ \t]+/)
    .filter((t) => t !== "");
  if (tokens.length === 0) return "missing value";
  const value = parseFloatToken(tokens[0]);
  if (value === undefined) return `bad value "${tokens[0]}"`;
  if (tokens.length > 2) return "unexpected text after the timestamp";
  const sample: Sample = { name, labels, value };
  if (tokens.length === 2) {
    const ts = /^[+-]?\d+$/.test(tokens[1]) ? Number(tokens[1]) : NaN;
    if (!Number.isSafeInteger(ts)) return `bad timestamp "${tokens[1]}"`;
    sample.timestampMs = ts;
  }
  return sample;
}

function skipBlank(s: string, i: number): number {
  while (s[i] === " " || s[i] === "\t") i++;
  return i;
}

// Reads up to the closing quote; \\, \" and \n are the only escapes the format defines.
function readLabelValue(line: string, start: number): { text: string; end: number } | string {
  let text = "";
  for (let i = start; i < line.length; i++) {
    const c = line[i];
    if (c === '"') return { text, end: i + 1 };
    if (c !== "\\") {
      text += c;
      continue;
    }
    const next = line[++i];
    if (next === "\\" || next === '"') text += next;
    else if (next === "n") text += "\n";
    else return next === undefined ? "unterminated label value" : `invalid escape sequence '\\${next}' in label value`;
  }
  return "unterminated label value";
}

// ---- output ----

const escapeHelpText = (s: string) => s.replace(/\\/g, "\\\\").replace(/\n/g, "\\n");
// Label values (both formats) and OpenMetrics HELP also escape the double quote.
const escapeQuoted = (s: string) => escapeHelpText(s).replace(/"/g, '\\"');

/** A sample value as both formats write it: +Inf/-Inf/NaN, and integers in plain digits (no 1e+06). */
export function formatNumber(v: number): string {
  if (Number.isNaN(v)) return "NaN";
  if (v === Infinity) return "+Inf";
  if (v === -Infinity) return "-Inf";
  // JS prints integers below 1e21 in plain digits and otherwise the shortest round-trip form, which
  // Go's ParseFloat reads back to the same float64.
  return String(v);
}

/**
 * OpenMetrics wants "le" and "quantile" values rendered canonically: Go's %g (exponent below 1e-4 and
 * from 1e6 on, two-digit exponent) with ".0" added to integers, e.g. 0.005, 1.0, 100000.0, 1e+06.
 */
export function canonicalFloat(v: number): string {
  if (!Number.isFinite(v)) return formatNumber(v);
  if (v === 0) return "0.0";
  const [mantissa, expText] = v.toExponential().split("e");
  const exp = Number(expText);
  if (exp < -4 || exp >= 6) return `${mantissa}e${exp < 0 ? "-" : "+"}${String(Math.abs(exp)).padStart(2, "0")}`;
  const s = String(v);
  return s.includes(".") ? s : s + ".0";
}

function sampleLine(name: string, labels: Record<string, string>, value: string, timestamp: string): string {
  const pairs = Object.entries(labels).map(([k, v]) => `${k}="${escapeQuoted(v)}"`);
  return `${name}${pairs.length ? `{${pairs.join(",")}}` : ""} ${value}${timestamp}\n`;
}

export function formatText(families: MetricFamily[]): string {
  let out = "";
  for (const f of families) {
    // A counter kept OpenMetrics-style (family "x", samples "x_total") must be typed under the sample
    // name here, or a 0.0.4 parser files "x_total" under a separate untyped family.
    const typeName = f.type === "counter" && f.samples.length > 0 && f.samples.every((s) => s.name === f.name + "_total") ? f.name + "_total" : f.name;
    if (f.help !== "") out += `# HELP ${typeName} ${escapeHelpText(f.help)}\n`;
    out += `# TYPE ${typeName} ${f.type}\n`;
    for (const s of f.samples) {
      out += sampleLine(s.name, s.labels, formatNumber(s.value), s.timestampMs === undefined ? "" : ` ${Math.trunc(s.timestampMs)}`);
    }
  }
  return out;
}

export function formatOpenMetrics(families: MetricFamily[]): string {
  let out = "";
  for (const f of families) {
    // OpenMetrics names the counter family without "_total" and every value sample with it.
    const name = f.type === "counter" && f.name.endsWith("_total") ? f.name.slice(0, -"_total".length) : f.name;
    out += `# TYPE ${name} ${f.type === "untyped" ? "unknown" : f.type}\n`; // the spec's order: TYPE, UNIT, HELP
    if (f.help !== "") out += `# HELP ${name} ${escapeQuoted(f.help)}\n`; // empty HELP means none: omit it
    for (const s of f.samples) {
      const sampleName = f.type !== "counter" || s.name === name + "_created" ? s.name : name + "_total";
      const ts = s.timestampMs === undefined ? "" : ` ${formatNumber(s.timestampMs / 1000)}`; // seconds in OpenMetrics
      out += sampleLine(sampleName, canonicalLabels(f.type, s.labels), formatNumber(s.value), ts);
    }
  }
  return out + "# EOF\n";
}

function canonicalLabels(type: MetricType, labels: Record<string, string>): Record<string, string> {
  const key = type === "histogram" ? "le" : type === "summary" ? "quantile" : undefined;
  const v = key === undefined || labels[key] === undefined ? undefined : parseFloatToken(labels[key]);
  return v === undefined ? labels : { ...labels, [key!]: canonicalFloat(v) };
}

// ---- content negotiation ----

const TEXT = { format: "text", contentType: TEXT_CONTENT_TYPE } as const;

/** Picks the format from an Accept header, as Prometheus negotiates it (OpenMetrics only when asked for). */
export function negotiate(accept: string | null): { format: "text" | "openmetrics"; contentType: string } {
  // Like client_golang's NegotiateIncludingOpenMetrics: walk the ranges by preference, take the first we
  // serve, and fall back to the 0.0.4 text format (also for */* and for no header at all).
  for (const range of parseAccept(accept ?? "")) {
    const version = range.params.version;
    if (range.type === "text/plain" && (version === undefined || version === "0.0.4")) return TEXT;
    if (range.type === "application/openmetrics-text" && (version === undefined || version === "1.0.0" || version === "0.0.1")) {
      return { format: "openmetrics", contentType: `application/openmetrics-text; version=${version ?? "1.0.0"}; charset=utf-8` };
    }
  }
  return TEXT;
}

function parseAccept(header: string): { type: string; params: Record<string, string> }[] {
  const ranges = header.split(",").map((part, order) => {
    const [type, ...rest] = part.split(";").map((s) => s.trim());
    const params: Record<string, string> = {};
    for (const p of rest) {
      const eq = p.indexOf("=");
      if (eq > 0)
        params[p.slice(0, eq).trim().toLowerCase()] = p
          .slice(eq + 1)
          .trim()
          .replace(/^"(.*)"$/, "$1");
    }
    const q = params.q === undefined ? 1 : Number(params.q); // a malformed q counts as 0, as in goautoneg
    delete params.q;
    return { type: (type ?? "").toLowerCase(), params, q: Number.isFinite(q) ? q : 0, order };
  });
  return ranges.filter((r) => r.q > 0).sort((a, b) => b.q - a.q || a.order - b.order);
}
