import { describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Counter, Gauge, Histogram, Registry, Summary } from "prom-client";
import { canonicalFloat, formatNumber, formatOpenMetrics, formatText, negotiate, parseText, type MetricFamily } from "./exposition.ts";

function parseCollecting(text: string) {
  const bad: { line: string; reason: string }[] = [];
  const families = parseText(text, (line, reason) => bad.push({ line, reason }));
  return { families, bad };
}

const HELP_SPECIAL = 'Say "hi" to C:\\chat\nsecond line';

// A realistic scrape: what the edgechat server's prom-client registry exposes, in family form.
const realistic: MetricFamily[] = [
  {
    name: "grpc_server_started_total",
    type: "counter",
    help: HELP_SPECIAL,
    samples: [
      { name: "grpc_server_started_total", labels: { grpc_method: "Send", grpc_type: "unary" }, value: 1027 },
      { name: "grpc_server_started_total", labels: { grpc_method: 'odd "name" \\ with\nnewline', grpc_type: "server_stream" }, value: 3 },
    ],
  },
  { name: "chat_connected_users", type: "gauge", help: "Users connected right now.", samples: [{ name: "chat_connected_users", labels: {}, value: 12 }] },
  {
    name: "process_start_time_seconds",
    type: "gauge",
    help: "Start time of the process since unix epoch in seconds.",
    samples: [{ name: "process_start_time_seconds", labels: {}, value: 1717171717.25 }],
  },
  {
    name: "chat_rpc_duration_seconds",
    type: "histogram",
    help: "RPC latency.",
    samples: [
      ...[
        ["0.005", 2],
        ["0.1", 7],
        ["1", 9],
        ["10", 10],
        ["+Inf", 10],
      ].map(([le, v]) => ({ name: "chat_rpc_duration_seconds_bucket", labels: { method: "Send", le: String(le) }, value: Number(v) })),
      { name: "chat_rpc_duration_seconds_sum", labels: { method: "Send" }, value: 4.25 },
      { name: "chat_rpc_duration_seconds_count", labels: { method: "Send" }, value: 10 },
    ],
  },
  {
    name: "chat_message_size_bytes",
    type: "summary",
    help: "Size of chat messages.",
    samples: [
      ...[
        ["0", 3],
        ["0.25", 20],
        ["0.5", 48],
        ["0.75", 130],
        ["1", 4096],
      ].map(([q, v]) => ({ name: "chat_message_size_bytes", labels: { quantile: String(q) }, value: Number(v) })),
      { name: "chat_message_size_bytes_sum", labels: {}, value: 91234 },
      { name: "chat_message_size_bytes_count", labels: {}, value: 800 },
    ],
  },
  { name: "chat_rooms_open", type: "gauge", help: "Rooms with at least one member.", samples: [{ name: "chat_rooms_open", labels: {}, value: NaN }] },
  { name: "chat_messages_dropped_total", type: "counter", help: "Messages dropped, by reason.", samples: [] }, // labelled, never incremented
];

describe("parseText", () => {
  test("round trip: format then parse gives the families back", () => {
    const { families, bad } = parseCollecting(formatText(realistic));
    expect(bad).toEqual([]);
    expect(families).toEqual(realistic);
    expect(formatText(families)).toBe(formatText(realistic));
  });

  test("reads what prom-client writes, and writes it back the same (bar its blank lines and 'Nan')", async () => {
    const reg = new Registry();
    new Counter({ name: "grpc_server_started_total", help: HELP_SPECIAL, labelNames: ["grpc_method"], registers: [reg] }).inc({ grpc_method: 'S"e\\n\nd' }, 3);
    new Gauge({ name: "chat_rooms_open", help: "Rooms.", registers: [reg] }).set(NaN);
    const h = new Histogram({ name: "chat_rpc_duration_seconds", help: "RPC latency.", buckets: [0.005, 1, 10], labelNames: ["method"], registers: [reg] });
    h.observe({ method: "Send" }, 0.5);
    const s = new Summary({ name: "chat_message_size_bytes", help: "Sizes.", percentiles: [0, 0.25, 0.5, 0.75, 1], registers: [reg] });
    [10, 20, 30].forEach((v) => s.observe(v));
    new Counter({ name: "chat_messages_dropped_total", help: "Dropped.", labelNames: ["reason"], registers: [reg] });
    const text = await reg.metrics();

    const { families, bad } = parseCollecting(text);
    expect(bad).toEqual([]);
    expect(families.map((f) => [f.name, f.type, f.samples.length])).toEqual([
      ["grpc_server_started_total", "counter", 1],
      ["chat_rooms_open", "gauge", 1],
      ["chat_rpc_duration_seconds", "histogram", 6],
      ["chat_message_size_bytes", "summary", 7],
      ["chat_messages_dropped_total", "counter", 0],
    ]);
    expect(families[0].help).toBe(HELP_SPECIAL);
    expect(families[0].samples[0].labels).toEqual({ grpc_method: 'S"e\\n\nd' });
    expect(families[1].samples[0].value).toBeNaN(); // prom-client spells it "Nan"
    expect(formatText(families)).toBe(text.replace(/\n\n/g, "\n").replace(/ Nan$/m, " NaN"));
  });

  test("escapes in label values and HELP", () => {
    const text = [
      "# HELP m A \\\\ backslash, a \\n newline, and \\q left as written",
      `m{path="C:\\\\dir\\\\",quote="say \\"hi\\"",nl="a\\nb",plain="é ✓ {},="} 1`,
    ].join("\n");
    const { families, bad } = parseCollecting(text);
    expect(bad).toEqual([]);
    expect(families[0].help).toBe("A \\ backslash, a \n newline, and \\q left as written");
    expect(families[0].samples[0].labels).toEqual({ path: "C:\\dir\\", quote: 'say "hi"', nl: "a\nb", plain: "é ✓ {},=" });
    const again = parseText(formatText(families));
    expect(again).toEqual(families);
  });

  test("special and unusual values", () => {
    const lines = ["NaN", "Nan", "nan", "+Inf", "-Inf", "inf", "+Infinity", "-infinity", "1e3", "-1.5E-7", ".5", "5.", "+7", "0", "-0", "9007199254740993"];
    const text = lines.map((v, i) => `v{i="${i}"} ${v}`).join("\n");
    const { families, bad } = parseCollecting(text);
    expect(bad).toEqual([]);
    const values = families[0].samples.map((s) => s.value);
    expect(values.slice(0, 3).every(Number.isNaN)).toBe(true);
    expect(values.slice(3)).toEqual([Infinity, -Infinity, Infinity, Infinity, -Infinity, 1000, -1.5e-7, 0.5, 5, 7, 0, -0, 9007199254740992]);
    expect(
      formatText(families)
        .split("\n")
        .slice(1, -1)
        .map((l) => l.split(" ")[1]),
    ).toEqual(["NaN", "NaN", "NaN", "+Inf", "-Inf", "+Inf", "+Inf", "-Inf", "1000", "-1.5e-7", "0.5", "5", "7", "0", "0", "9007199254740992"]);
  });

  test("formatNumber: integers in plain digits, other values in shortest round-trip form", () => {
    expect([1e6, 123456789, 2 ** 53, -42, 0.1, 1 / 3, 1e21, 1e-7, 5e-324].map(formatNumber)).toEqual([
      "1000000",
      "123456789",
      "9007199254740992",
      "-42",
      "0.1",
      "0.3333333333333333",
      "1e+21",
      "1e-7",
      "5e-324",
    ]);
  });

  test("timestamps are kept as milliseconds", () => {
    const { families, bad } = parseCollecting("a 1 1700000000123\nb 2 -5\n");
    expect(bad).toEqual([]);
    expect(families.map((f) => f.samples[0].timestampMs)).toEqual([1700000000123, -5]);
    expect(formatText(families)).toBe("# TYPE a untyped\na 1 1700000000123\n# TYPE b untyped\nb 2 -5\n");
  });

  test("samples find their family: suffixes, counters with and without _total in the family name, untyped", () => {
    const text = [
      "# TYPE grpc_server_started_total counter",
      "grpc_server_started_total 5",
      "# TYPE http_requests counter", // OpenMetrics-style: the family drops _total, its samples keep it
      "http_requests_total 6",
      "# TYPE lat histogram",
      'lat_bucket{le="+Inf"} 1',
      "lat_sum 0.2",
      "lat_count 1",
      "# TYPE size summary",
      'size{quantile="0.5"} 3',
      "size_sum 9",
      "size_count 3",
      "orphan_sum 4", // no family "orphan": a family of its own
      "# TYPE g gauge",
      "g_total 1", // gauges take no suffix
      "loose 1",
      "# TYPE later gauge",
      "later 1",
      'lat_bucket{le="1"} 1', // out of place, but still lat's
      "",
      "   # a comment, indented, with blank lines around",
      "",
    ].join("\n");
    const { families, bad } = parseCollecting(text);
    expect(bad).toEqual([]);
    expect(families.map((f) => [f.name, f.type, f.samples.map((s) => s.name).join(",")])).toEqual([
      ["grpc_server_started_total", "counter", "grpc_server_started_total"],
      ["http_requests", "counter", "http_requests_total"],
      ["lat", "histogram", "lat_bucket,lat_sum,lat_count,lat_bucket"],
      ["size", "summary", "size,size_sum,size_count"],
      ["orphan_sum", "untyped", "orphan_sum"],
      ["g", "gauge", ""],
      ["g_total", "untyped", "g_total"],
      ["loose", "untyped", "loose"],
      ["later", "gauge", "later"],
    ]);
    // In 0.0.4 output the OpenMetrics-style counter is typed under its sample name, so it stays a counter.
    expect(formatText(families)).toContain("# TYPE http_requests_total counter\nhttp_requests_total 6\n");
  });

  test("bad lines are skipped with a reason and counted; the good lines around them are kept", () => {
    const badLines = [
      ["this is not a metric", "bad value"],
      ["<html><body>502</body></html>", "invalid metric name"],
      ['m{a="b"', "unterminated label set"],
      ['m{a="b} 1', "unterminated label value"],
      ["m{a=b} 1", "expected '\"'"],
      ['m{1a="b"} 1', "invalid label name"],
      ['m{a="b" c="d"} 1', "expected ',' or '}'"],
      ['m{a="x",a="y"} 1', "duplicate label a"],
      ['m{__name__="x"} 1', "reserved"],
      ['m{a="\\t"} 1', "invalid escape sequence"],
      ["m 12abc", "bad value"],
      ["m 0x1p3", "bad value"],
      ["m 1_000", "bad value"],
      ["m 1e999", "bad value"],
      ["m", "missing value"],
      ["m 1 17000000000x", "bad timestamp"],
      ["m 1 1.5", "bad timestamp"],
      ["m 1 2 3", "unexpected text after the timestamp"],
      ["# TYPE good counter", "duplicate TYPE line for good"],
      ["# TYPE good_g bogus", 'unknown metric type "bogus"'],
      ["# TYPE", "invalid metric name in TYPE line"],
      ["# HELP good again", "duplicate HELP line for good"],
      ["# TYPE nohist", "without a type"],
      ["good 7", "duplicate sample for good"],
      ["# TYPE late gauge", "TYPE line for late after its samples"],
      ["h 1", "lacks a _bucket, _sum or _count suffix"],
      ["h_bucket 1", "without a numeric le label"],
      ['h_bucket{le="high"} 1', "without a numeric le label"],
      ["s 1", "without a numeric quantile label"],
    ];
    const text = [
      "# HELP good Good.",
      "# TYPE good counter",
      "good 7",
      "late 1",
      "# TYPE h histogram",
      "# TYPE s summary",
      ...badLines.map(([line]) => line),
      "good_total_looks_like_garbage_but_is_fine 1",
      'h_bucket{le="+Inf"} 1',
      "h_count 1",
    ].join("\n");
    const { families, bad } = parseCollecting(text);
    expect(bad.map((b) => b.line)).toEqual(badLines.map(([line]) => line));
    bad.forEach((b, i) => expect(b.reason).toContain(badLines[i][1]));
    expect(families.map((f) => [f.name, f.samples.length])).toEqual([
      ["good", 1],
      ["late", 1],
      ["h", 2],
      ["s", 0],
      ["good_total_looks_like_garbage_but_is_fine", 1],
    ]);
    expect(() => parseText('\u0000\uffff{{{\n}}} "\n# TYPE\n')).not.toThrow();
  });

  test("tolerates CRLF line ends and blanks around tokens, as expfmt does", () => {
    const { families, bad } = parseCollecting('# TYPE m gauge\r\n  m { a = "b" , } \t 1 \r\n');
    expect(bad).toEqual([]);
    expect(families).toEqual([{ name: "m", type: "gauge", help: "", samples: [{ name: "m", labels: { a: "b" }, value: 1 }] }]);
  });
});

describe("formatOpenMetrics", () => {
  const om = formatOpenMetrics(realistic);

  test("counter families lose _total in TYPE/HELP, their samples carry it", () => {
    expect(om).toContain("# TYPE grpc_server_started counter\n# HELP grpc_server_started ");
    expect(om).toContain('grpc_server_started_total{grpc_method="Send",grpc_type="unary"} 1027\n');
    const bare: MetricFamily = { name: "jobs_done", type: "counter", help: "", samples: [{ name: "jobs_done", labels: {}, value: 2 }] };
    expect(formatOpenMetrics([bare])).toBe("# TYPE jobs_done counter\njobs_done_total 2\n# EOF\n");
    const omStyle: MetricFamily = { name: "jobs", type: "counter", help: "", samples: [{ name: "jobs_total", labels: {}, value: 2 }] };
    expect(formatOpenMetrics([omStyle])).toBe("# TYPE jobs counter\njobs_total 2\n# EOF\n");
  });

  test("untyped is unknown, HELP also escapes quotes, empty HELP is left out, ends with # EOF", () => {
    const f: MetricFamily[] = [{ name: "x", type: "untyped", help: "", samples: [{ name: "x", labels: {}, value: 1 }] }];
    expect(formatOpenMetrics(f)).toBe("# TYPE x unknown\nx 1\n# EOF\n");
    expect(om).toContain('# HELP grpc_server_started Say \\"hi\\" to C:\\\\chat\\nsecond line\n');
    expect(om.endsWith("\n# EOF\n")).toBe(true);
    expect(om).not.toContain("\n\n"); // the spec allows no separator between families
    expect(formatOpenMetrics([])).toBe("# EOF\n");
  });

  test("le and quantile values are canonical numbers", () => {
    expect(om).toContain('chat_rpc_duration_seconds_bucket{method="Send",le="1.0"} 9\n');
    expect(om).toContain('chat_rpc_duration_seconds_bucket{method="Send",le="0.005"} 2\n');
    expect(om).toContain('chat_rpc_duration_seconds_bucket{method="Send",le="+Inf"} 10\n');
    expect(om).toContain('chat_message_size_bytes{quantile="0.0"} 3\n');
    expect(om).toContain('chat_message_size_bytes{quantile="1.0"} 4096\n');
    // The spec's examples, "Considerations: Canonical Numbers".
    const a = [0, 0.001, 0.002, 0.01, 0.1, 0.9, 0.95, 0.99, 0.999, 1, 1.7, 10];
    expect(a.map(canonicalFloat).join(" ")).toBe("0.0 0.001 0.002 0.01 0.1 0.9 0.95 0.99 0.999 1.0 1.7 10.0");
    const b = [1e-10, 1e-9, 1e-5, 1e-4, 0.1, 1, 1e5, 1e6, 1e10];
    expect(b.map(canonicalFloat).join(" ")).toBe("1e-10 1e-09 1e-05 0.0001 0.1 1.0 100000.0 1e+06 1e+10");
    expect([Infinity, -Infinity, 1234567, -2.5e-7].map(canonicalFloat)).toEqual(["+Inf", "-Inf", "1.234567e+06", "-2.5e-07"]);
  });

  test("timestamps are written in seconds", () => {
    const f: MetricFamily[] = [{ name: "g", type: "gauge", help: "", samples: [{ name: "g", labels: {}, value: 1, timestampMs: 1520879607789 }] }];
    expect(formatOpenMetrics(f)).toBe("# TYPE g gauge\ng 1 1520879607.789\n# EOF\n");
  });
});

describe("negotiate", () => {
  const TEXT = { format: "text", contentType: "text/plain; version=0.0.4; charset=utf-8" };
  const OM = { format: "openmetrics", contentType: "application/openmetrics-text; version=1.0.0; charset=utf-8" };
  test.each([
    ["no header", null, TEXT],
    ["empty", "", TEXT],
    ["*/*", "*/*", TEXT],
    ["curl", "text/plain", TEXT],
    ["junk", "application/json, ;;;, =", TEXT],
    // Prometheus 2.x scrape default.
    [
      "prometheus 2",
      "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1",
      OM,
    ],
    // Prometheus 3.x scrape default.
    [
      "prometheus 3",
      "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.5,application/openmetrics-text;version=0.0.1;q=0.4,text/plain;version=1.0.0;escaping=allow-utf-8;q=0.3,text/plain;version=0.0.4;q=0.2,*/*;q=0.1",
      OM,
    ],
    ["text preferred by q", "application/openmetrics-text;version=1.0.0;q=0.2, text/plain;version=0.0.4;q=0.9", TEXT],
    ["openmetrics refused with q=0", "application/openmetrics-text;q=0, */*", TEXT],
    ["unknown openmetrics version", "application/openmetrics-text; version=2.0.0", TEXT],
    ["case and spaces", " Application/OpenMetrics-Text ; Version=1.0.0 ", OM],
    [
      "old openmetrics",
      "application/openmetrics-text; version=0.0.1",
      { format: "openmetrics", contentType: "application/openmetrics-text; version=0.0.1; charset=utf-8" },
    ],
  ])("%s", (_, accept, want) => {
    expect(negotiate(accept as string | null)).toEqual(want as ReturnType<typeof negotiate>);
  });
});

// promtool parses with client_golang's expfmt and lints; "nothing reported" is the bar for our output.
const promtool = Bun.which("promtool");
if (!promtool) console.warn("SKIPPING promtool checks: promtool not found (Debian: apt-get install -y prometheus)");

describe("promtool", () => {
  test.skipIf(!promtool)("`promtool check metrics` reports nothing on formatText output", () => {
    const text = formatText(realistic);
    const run = Bun.spawnSync([promtool!, "check", "metrics"], { stdin: Buffer.from(text) });
    const report = run.stdout.toString() + run.stderr.toString();
    expect(report).toBe("");
    expect(run.exitCode).toBe(0);
    // The check has teeth: a lint problem and a syntax error are both reported.
    const broken = Bun.spawnSync([promtool!, "check", "metrics"], { stdin: Buffer.from('# TYPE jobs counter\njobs 1\nm{a="b 1\n') });
    expect(broken.exitCode).not.toBe(0);
  });

  test.skipIf(!promtool)("Prometheus' own OpenMetrics parser accepts formatOpenMetrics output", () => {
    // `promtool tsdb create-blocks-from openmetrics` runs Prometheus' OpenMetrics parser (strict about
    // # EOF, types, blank lines) over the input; it needs a timestamp on every sample.
    const stamped = realistic.map((f) => ({ ...f, samples: f.samples.map((s) => ({ ...s, timestampMs: 1700000000123 })) }));
    const dir = mkdtempSync(join(tmpdir(), "sidecar-om-"));
    try {
      writeFileSync(join(dir, "in.om"), formatOpenMetrics(stamped));
      const run = Bun.spawnSync([promtool!, "tsdb", "create-blocks-from", "openmetrics", "--quiet", join(dir, "in.om"), join(dir, "blocks")]);
      expect(run.stderr.toString() + run.stdout.toString()).toBe("");
      expect(run.exitCode).toBe(0);
      writeFileSync(join(dir, "bad.om"), formatOpenMetrics(stamped).replace("# EOF\n", "")); // teeth
      const bad = Bun.spawnSync([promtool!, "tsdb", "create-blocks-from", "openmetrics", "--quiet", join(dir, "bad.om"), join(dir, "blocks2")]);
      expect(bad.stdout.toString() + bad.stderr.toString()).toContain("EOF");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
