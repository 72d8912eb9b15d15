// Cases ported from prometheus/prometheus model/relabel/relabel_test.go (TestRelabel,
// TestRelabelValidate, TestTargetLabelLegacyValidity), then cases derived from relabel.go itself.
import { describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { compileRelabel, loadRelabelConfig, type Labels, type RelabelConfig, type RelabelOptions } from "./relabel.ts";

const run = (configs: RelabelConfig[], input: Labels, options?: RelabelOptions) => compileRelabel(configs, options)(input);

// Computed here independently of relabel.ts: MD5, last 8 bytes read as a big-endian uint64, mod m.
function hashmod(value: string, modulus: number): string {
  const hex = createHash("md5").update(Buffer.from(value, "utf8")).digest("hex");
  return (BigInt(`0x${hex.slice(16)}`) % BigInt(modulus)).toString();
}

function yamlFile(text: string): string {
  const path = join(mkdtempSync(join(tmpdir(), "relabel-")), "relabel.yaml");
  writeFileSync(path, text);
  return path;
}

describe("Prometheus TestRelabel table", () => {
  test("replace with ${1} in the replacement", () => {
    expect(
      run([{ source_labels: ["a"], regex: "f(.*)", target_label: "d", separator: ";", replacement: "ch${1}-ch${1}", action: "replace" }], {
        a: "foo",
        b: "bar",
        c: "baz",
      }),
    ).toEqual({ a: "foo", b: "bar", c: "baz", d: "choo-choo" });
  });

  test("rules see the output of earlier rules; $1$2 style references", () => {
    expect(
      run(
        [
          { source_labels: ["a", "b"], regex: "f(.*);(.*)r", target_label: "a", separator: ";", replacement: "b${1}${2}m", action: "replace" },
          { source_labels: ["c", "a"], regex: "(b).*b(.*)ba(.*)", target_label: "d", separator: ";", replacement: "$1$2$2$3", action: "replace" },
        ],
        { a: "foo", b: "bar", c: "baz" },
      ),
    ).toEqual({ a: "boobam", b: "bar", c: "baz", d: "boooom" });
  });

  test("drop stops processing", () => {
    expect(
      run(
        [
          { source_labels: ["a"], regex: ".*o.*", action: "drop" },
          { source_labels: ["a"], regex: "f(.*)", target_label: "d", separator: ";", replacement: "ch$1-ch$1", action: "replace" },
        ],
        { a: "foo" },
      ),
    ).toBeUndefined();
    expect(run([{ source_labels: ["a"], regex: ".*o.*", action: "drop" }], { a: "foo", b: "bar" })).toBeUndefined();
  });

  test("group in the middle of the regex", () => {
    expect(run([{ source_labels: ["a"], regex: ".*(b).*", target_label: "d", separator: ";", replacement: "$1", action: "replace" }], { a: "abc" })).toEqual({
      a: "abc",
      d: "b",
    });
  });

  test("drop that does not match, and regexes are anchored (f|o does not match foo)", () => {
    expect(run([{ source_labels: ["a"], regex: "no-match", action: "drop" }], { a: "foo" })).toEqual({ a: "foo" });
    expect(run([{ source_labels: ["a"], regex: "f|o", action: "drop" }], { a: "foo" })).toEqual({ a: "foo" });
  });

  test("keep", () => {
    expect(run([{ source_labels: ["a"], regex: "no-match", action: "keep" }], { a: "foo" })).toBeUndefined();
    expect(run([{ source_labels: ["a"], regex: "f.*", action: "keep" }], { a: "foo" })).toEqual({ a: "foo" });
  });

  test("no replacement if there is no match", () => {
    expect(run([{ source_labels: ["a"], regex: "f", target_label: "b", replacement: "bar", action: "replace" }], { a: "boo" })).toEqual({ a: "boo" });
  });

  test("blank replacement deletes the label", () => {
    expect(run([{ source_labels: ["a"], regex: "(f).*", target_label: "$1", replacement: "$2", action: "replace" }], { a: "foo", f: "baz" })).toEqual({
      a: "foo",
    });
  });

  test("hashmod, expected values verbatim from Prometheus's table", () => {
    expect(run([{ source_labels: ["c"], target_label: "d", separator: ";", action: "hashmod", modulus: 1000 }], { a: "foo", b: "bar", c: "baz" })).toEqual({
      a: "foo",
      b: "bar",
      c: "baz",
      d: "976",
    });
    expect(run([{ source_labels: ["a"], target_label: "b", separator: ";", action: "hashmod", modulus: 1000 }], { a: "foo\nbar" })).toEqual({
      a: "foo\nbar",
      b: "734",
    });
    // and the independent computation agrees with them
    expect(hashmod("baz", 1000)).toBe("976");
    expect(hashmod("foo\nbar", 1000)).toBe("734");
  });

  test("labelmap", () => {
    expect(run([{ regex: "(b.*)", replacement: "bar_${1}", action: "labelmap" }], { a: "foo", b1: "bar", b2: "baz" })).toEqual({
      a: "foo",
      b1: "bar",
      b2: "baz",
      bar_b1: "bar",
      bar_b2: "baz",
    });
    expect(
      run([{ regex: "__meta_(my.*)", replacement: "${1}", action: "labelmap" }], { a: "foo", __meta_my_bar: "aaa", __meta_my_baz: "bbb", __meta_other: "ccc" }),
    ).toEqual({ a: "foo", __meta_my_bar: "aaa", __meta_my_baz: "bbb", __meta_other: "ccc", my_bar: "aaa", my_baz: "bbb" });
  });

  test("target_label from a group; a group that does not exist", () => {
    const regex = "some-([^-]+)-([^,]+)";
    expect(run([{ source_labels: ["a"], regex, action: "replace", replacement: "${2}", target_label: "${1}" }], { a: "some-name-value" })).toEqual({
      a: "some-name-value",
      name: "value",
    });
    // replacement "" (group 3 does not exist): nothing is set
    expect(run([{ source_labels: ["a"], regex, action: "replace", replacement: "${3}", target_label: "${1}" }], { a: "some-name-value" })).toEqual({
      a: "some-name-value",
    });
    // target_label "" is not a valid name: the rule does nothing
    expect(
      run(
        [
          { source_labels: ["a"], regex, action: "replace", replacement: "${1}", target_label: "${3}" },
          { source_labels: ["a"], regex, action: "replace", replacement: "${1}", target_label: "${3}" },
          { source_labels: ["a"], regex: "some-([^-]+)(-[^,]+)", action: "replace", replacement: "${1}", target_label: "${3}" },
        ],
        { a: "some-name-0" },
      ),
    ).toEqual({ a: "some-name-0" });
  });

  test("real-life like use case", () => {
    const src = ["__meta_sd_tags"];
    expect(
      run(
        [
          { source_labels: src, regex: "(?:.+,|^)path:(/[^,]+).*", action: "replace", replacement: "${1}", target_label: "__metrics_path__" },
          { source_labels: src, regex: "(?:.+,|^)job:([^,]+).*", action: "replace", replacement: "${1}", target_label: "job" },
          { source_labels: src, regex: "(?:.+,|^)label:([^=]+)=([^,]+).*", action: "replace", replacement: "${2}", target_label: "${1}" },
        ],
        { __meta_sd_tags: "path:/secret,job:some-job,label:foo=bar" },
      ),
    ).toEqual({
      __meta_sd_tags: "path:/secret,job:some-job,label:foo=bar",
      __metrics_path__: "/secret",
      job: "some-job",
      foo: "bar",
    });
  });

  test("prometheus/prometheus#12283: a label dropped then set again", () => {
    expect(
      run(
        [
          { regex: "^__meta_kubernetes_pod_container_port_name$", action: "labeldrop" },
          {
            source_labels: ["__meta_kubernetes_pod_annotation_XXX_metrics_port"],
            regex: "(.+)",
            action: "replace",
            replacement: "metrics",
            target_label: "__meta_kubernetes_pod_container_port_name",
          },
          { source_labels: ["__meta_kubernetes_pod_container_port_name"], regex: "^metrics$", action: "keep" },
        ],
        { __meta_kubernetes_pod_container_port_name: "foo", __meta_kubernetes_pod_annotation_XXX_metrics_port: "9091" },
      ),
    ).toEqual({ __meta_kubernetes_pod_annotation_XXX_metrics_port: "9091", __meta_kubernetes_pod_container_port_name: "metrics" });
  });

  test("labelkeep and labeldrop match names", () => {
    const input = { a: "foo", b1: "bar", b2: "baz" };
    expect(run([{ regex: "(b.*)", action: "labelkeep" }], input)).toEqual({ b1: "bar", b2: "baz" });
    expect(run([{ regex: "(b.*)", action: "labeldrop" }], input)).toEqual({ a: "foo" });
  });

  test("uppercase and lowercase", () => {
    expect(
      run(
        [
          { source_labels: ["foo"], action: "uppercase", target_label: "foo_uppercase" },
          { source_labels: ["foo"], action: "lowercase", target_label: "foo_lowercase" },
        ],
        { foo: "bAr123Foo" },
      ),
    ).toEqual({ foo: "bAr123Foo", foo_lowercase: "bar123foo", foo_uppercase: "BAR123FOO" });
  });

  test("keepequal and dropequal", () => {
    const input = { __tmp_port: "1234", __port1: "1234", __port2: "5678" };
    expect(run([{ source_labels: ["__tmp_port"], action: "keepequal", target_label: "__port1" }], input)).toEqual(input);
    expect(run([{ source_labels: ["__tmp_port"], action: "dropequal", target_label: "__port1" }], input)).toBeUndefined();
    expect(run([{ source_labels: ["__tmp_port"], action: "dropequal", target_label: "__port2" }], input)).toEqual(input);
    expect(run([{ source_labels: ["__tmp_port"], action: "keepequal", target_label: "__port2" }], input)).toBeUndefined();
  });

  test(". matches a newline (regexes are compiled as ^(?s:re)$)", () => {
    expect(
      run([{ source_labels: ["a"], regex: "line1.*line2", target_label: "d", separator: ";", replacement: "match${1}", action: "replace" }], {
        a: "line1\nline2",
        b: "bar",
        c: "baz",
      }),
    ).toEqual({ a: "line1\nline2", b: "bar", c: "baz", d: "match" });
  });

  test("UTF-8 label names (nameValidation: utf8, Prometheus 3's default)", () => {
    const utf8: RelabelOptions = { nameValidation: "utf8" };
    const base = { b: "bar", c: "baz" };
    expect(
      run(
        [{ source_labels: ["utf-8.label"], regex: "line1.*line2", target_label: "d", separator: ";", replacement: "match${1}", action: "replace" }],
        { "utf-8.label": "line1\nline2", ...base },
        utf8,
      ),
    ).toEqual({ "utf-8.label": "line1\nline2", ...base, d: "match" });
    for (const target_label of ["utf-8.label", "utf-8.label${1}"]) {
      expect(
        run(
          [{ source_labels: ["a"], regex: "line1.*line2", target_label, separator: ";", replacement: "match${1}", action: "replace" }],
          { a: "line1\nline2", ...base },
          utf8,
        ),
      ).toEqual({ a: "line1\nline2", ...base, "utf-8.label": "match" });
    }
  });

  test("named groups, ${name} and $name", () => {
    expect(
      run(
        [
          {
            source_labels: ["a"],
            regex: "(line1).*(?<second>line2)",
            target_label: "label1_${1}",
            separator: ";",
            replacement: "val_${second}",
            action: "replace",
          },
          {
            source_labels: ["a"],
            regex: "(line1).*(?<second>line2)",
            target_label: "label2_$1",
            separator: ";",
            replacement: "val_$second",
            action: "replace",
          },
        ],
        { a: "line1\nline2", b: "bar", c: "baz" },
      ),
    ).toEqual({ a: "line1\nline2", b: "bar", c: "baz", label1_line1: "val_line2", label2_line1: "val_line2" });
  });

  test("__type__ and __unit__ targets", () => {
    expect(
      run([{ source_labels: ["__name__"], regex: ".*_total$", target_label: "__type__", replacement: "counter", action: "replace" }], {
        __name__: "http_requests_total",
      }),
    ).toEqual({ __name__: "http_requests_total", __type__: "counter" });
    expect(
      run([{ source_labels: ["__name__"], regex: ".*_bytes$", target_label: "__unit__", replacement: "bytes", action: "replace" }], {
        __name__: "disk_usage_bytes",
      }),
    ).toEqual({ __name__: "disk_usage_bytes", __unit__: "bytes" });
  });
});

describe("Prometheus TestRelabelValidate and TestTargetLabelLegacyValidity", () => {
  test("what UTF-8 validation allows and legacy refuses", () => {
    const regex = "some-([^-]+)-([^,]+)";
    const cases: RelabelConfig[] = [
      { action: "lowercase", target_label: "${3}" },
      { source_labels: ["a"], regex, action: "replace", replacement: "${1}", target_label: "${3}" },
      { source_labels: ["a"], regex, action: "replace", replacement: "${1}", target_label: "0${3}" },
      { source_labels: ["a"], regex, action: "replace", replacement: "${1}", target_label: "-${3}" },
    ];
    for (const c of cases) expect(() => compileRelabel([c], { nameValidation: "utf8" })).not.toThrow();
    expect(() => compileRelabel([cases[0]!])).toThrow(`"\${3}" is invalid 'target_label' for lowercase action`);
    expect(() => compileRelabel([cases[1]!])).not.toThrow(); // ${3} is a fine legacy template
    expect(() => compileRelabel([cases[2]!])).toThrow("is invalid 'target_label' for replace action");
    expect(() => compileRelabel([cases[3]!])).toThrow("is invalid 'target_label' for replace action");
  });

  test("labelmap replacements valid under legacy validation", () => {
    expect(() => compileRelabel([{ regex: "__meta_kubernetes_pod_label_(strimzi_io_.+)", action: "labelmap", replacement: "$1" }])).not.toThrow();
    expect(() => compileRelabel([{ regex: "__meta_(.+)", action: "labelmap", replacement: "${1}" }])).not.toThrow();
  });

  test("empty action and missing target_label", () => {
    expect(() => compileRelabel(loadRelabelConfig(yamlFile("- action:\n")))).toThrow("relabel action cannot be empty");
    expect(() => compileRelabel([{ action: "replace" }])).toThrow("requires 'target_label' value");
    expect(() => compileRelabel([{ action: "lowercase" }])).toThrow("requires 'target_label' value");
  });

  test("legacy target_label templates", () => {
    const table: [string, boolean][] = [
      ["-label", false],
      ["label", true],
      ["label${1}", true],
      ["${1}label", true],
      ["${1}", true],
      ["${", false],
      ["$", false],
      ["${}", false],
      ["foo${", false],
      ["$1", true],
      ["asd$2asd", true],
      ["-foo${1}bar-", false],
      ["bar.foo${1}bar", false],
      ["_${1}_", true],
      ["foo${bar}foo", true],
    ];
    for (const [target_label, valid] of table) {
      const compile = () => compileRelabel([{ target_label, replacement: "x" }]);
      if (valid) expect(compile, target_label).not.toThrow();
      else expect(compile, target_label).toThrow("is invalid 'target_label' for replace action");
    }
  });
});

describe("derived from relabel.go", () => {
  test("defaults: replace, (.*), $1, separator ;", () => {
    expect(run([{ source_labels: ["a", "b"], target_label: "c" }], { a: "x", b: "y" })).toEqual({ a: "x", b: "y", c: "x;y" });
    expect(run([{ source_labels: ["a", "b"], separator: "/", target_label: "c" }], { a: "x" })).toEqual({ a: "x", c: "x/" });
    expect(run([{ target_label: "cluster", replacement: "prod" }], { a: "x" })).toEqual({ a: "x", cluster: "prod" });
  });

  test("a missing source label reads as an empty string; replacing from it deletes the target", () => {
    expect(run([{ source_labels: ["missing"], target_label: "a" }], { a: "x", b: "y" })).toEqual({ b: "y" });
    expect(run([{ source_labels: ["missing", "b"], regex: ";y", action: "keep" }], { b: "y" })).toEqual({ b: "y" });
  });

  test("Go Expand rules: $1x is the group named 1x, ${1}x is group 1 then x", () => {
    const r = (replacement: string) => run([{ source_labels: ["a"], regex: "(f)(o+)", target_label: "t", replacement }], { a: "foo" })?.t;
    expect(r("$1x")).toBeUndefined(); // "" deletes
    expect(r("${1}x")).toBe("fx");
    expect(r("$2-$1")).toBe("oo-f"); // "-" ends a name
    expect(r("${0}")).toBe("foo");
    expect(r("$01")).toBeUndefined(); // a leading zero makes it a name, and no group has it
    expect(r("$$1")).toBe("$1");
    expect(r("a$")).toBe("a$"); // malformed: $ kept
    expect(r("${1")).toBe("${1");
    expect(r("${}x")).toBe("${}x");
    expect(r("$9")).toBeUndefined();
  });

  test("replace: an expanded target_label that is not a valid name does nothing", () => {
    expect(run([{ source_labels: ["a"], regex: "(.*)", target_label: "${1}", replacement: "v" }], { a: "1abc" })).toEqual({ a: "1abc" });
    expect(run([{ source_labels: ["a"], regex: "(.*)", target_label: "${1}", replacement: "v" }], { a: "ok" })).toEqual({ a: "ok", ok: "v" });
  });

  test("hashmod uses the last 8 digest bytes, big-endian, for any modulus", () => {
    for (const [value, modulus] of [
      ["", 7],
      ["pod-7f9c", 4],
      ["a;b", 1000],
      ["é", 13],
      ["x", Number.MAX_SAFE_INTEGER],
    ] as const) {
      expect(run([{ source_labels: ["v"], target_label: "h", action: "hashmod", modulus }], value ? { v: value } : {})?.h).toBe(hashmod(value, modulus));
    }
  });

  test("lowercase and uppercase follow Go's per-rune simple case mapping", () => {
    const up = (v: string) => run([{ source_labels: ["a"], target_label: "t", action: "uppercase" }], { a: v })?.t;
    const low = (v: string) => run([{ source_labels: ["a"], target_label: "t", action: "lowercase" }], { a: v })?.t;
    expect(up("straße")).toBe("STRAßE"); // not STRASSE
    expect(up("ᾳ")).toBe("ᾼ");
    expect(low("İ")).toBe("i");
    expect(low("ΟΔΟΣ")).toBe("οδοσ"); // no final-sigma rule
    expect(run([{ source_labels: ["missing"], target_label: "a", action: "lowercase" }], { a: "x" })).toEqual({}); // "" deletes
  });

  test("labelmap follows labels.Builder's order: input labels, then labels set by earlier rules", () => {
    // b_x is an input label, a_x is set by the first rule, so a_x is visited last and its value wins.
    expect(
      run(
        [
          { target_label: "a_x", replacement: "set" },
          { regex: "._x", replacement: "y", action: "labelmap" },
        ],
        { b_x: "input" },
      ),
    ).toEqual({ a_x: "set", b_x: "input", y: "set" });
  });

  test('empty values are absent: dropped from the input, and a keep on "" matches them', () => {
    expect(run([], { a: "", b: "x" })).toEqual({ b: "x" });
    expect(run([{ source_labels: ["a"], regex: "", action: "keep" }], { a: "", b: "x" })).toEqual({ b: "x" });
    expect(run([{ regex: "(.*)", replacement: "copy_$1", action: "labelmap" }], { a: "", b: "x" })).toEqual({ b: "x", copy_b: "x" });
  });

  test("the input is never mutated", () => {
    const input = { __name__: "m", a: "1", b: "" };
    const snapshot = { ...input };
    run(
      [
        { regex: "a", action: "labeldrop" },
        { target_label: "c", replacement: "3" },
      ],
      input,
    );
    expect(input).toEqual(snapshot);
  });

  test("RE2 syntax translated to JS", () => {
    expect(run([{ source_labels: ["a"], regex: "(?P<host>[^:]+)\\:\\d+", target_label: "host", replacement: "$host" }], { a: "db:5432" })?.host).toBe("db");
    expect(run([{ source_labels: ["a"], regex: "(?i)foo", action: "keep" }], { a: "FOO" })).toEqual({ a: "FOO" });
    expect(run([{ source_labels: ["a"], regex: "\\-\\_x", action: "keep" }], { a: "-_x" })).toEqual({ a: "-_x" });
  });
});

describe("refused configs name the rule", () => {
  const refused: [RelabelConfig, string][] = [
    [{ source_labels: ["a"], action: "replace" }, "relabel configuration for replace action requires 'target_label' value"],
    [{ source_labels: ["a"], action: "hashmod", modulus: 4 }, "relabel configuration for hashmod action requires 'target_label' value"],
    [{ source_labels: ["a"], action: "hashmod", target_label: "h" }, "relabel configuration for hashmod requires non-zero modulus"],
    [{ source_labels: ["a"], action: "hashmod", target_label: "h", modulus: 0 }, "requires non-zero modulus"],
    [{ source_labels: ["a"], regex: "(unclosed", target_label: "b" }, 'invalid regex "(unclosed"'],
    [{ source_labels: ["a"], regex: "a(?i)b", target_label: "b" }, 'invalid regex "a(?i)b"'], // RE2 accepts it; JS cannot
    [{ regex: "x", source_labels: ["a"], action: "labeldrop" }, "labeldrop action requires only 'regex', and no other fields"],
    [{ regex: "x", target_label: "a", action: "labelkeep" }, "labelkeep action requires only 'regex', and no other fields"],
    [{ regex: "x", separator: ",", action: "labelkeep" }, "labelkeep action requires only 'regex'"],
    [{ target_label: "1abc", replacement: "x" }, `"1abc" is invalid 'target_label' for replace action`],
    [{ target_label: "a-b", replacement: "x" }, `"a-b" is invalid 'target_label' for replace action`],
    [
      { source_labels: ["a"], target_label: "t", action: "keepequal", regex: "(.*)" },
      "keepequal action requires only 'source_labels' and `target_label`, and no other fields",
    ],
    [{ source_labels: ["a"], target_label: "t", action: "dropequal", separator: "," }, "dropequal action requires only 'source_labels'"],
    [{ source_labels: ["a"], target_label: "t", action: "lowercase", replacement: "x" }, "'replacement' can not be set for lowercase action"],
    [{ regex: "(.*)", replacement: "bad-$1", action: "labelmap" }, `"bad-$1" is invalid 'replacement' for labelmap action`],
    [{ source_labels: ["a"], action: "frobnicate" as never }, 'unknown relabel action "frobnicate"'],
    [{ source_labels: ["bad-name"], target_label: "t" }, '"bad-name" is not a valid label name'],
    [{ target_lable: "t" } as RelabelConfig, 'unknown field "target_lable"'],
    [{ source_labels: ["a"], target_label: "h", action: "hashmod", modulus: 1.5 }, "modulus must be a non-negative integer"],
  ];
  for (const [config, message] of refused) {
    test(message, () => {
      const ok: RelabelConfig = { regex: "__tmp_.*", action: "labeldrop" };
      expect(() => compileRelabel([ok, config])).toThrow(`metric_relabel_configs[1]: `);
      expect(() => compileRelabel([ok, config])).toThrow(message);
    });
  }

  test("the action is case-insensitive, as in Prometheus", () => {
    expect(run([{ source_labels: ["a"], regex: "x", action: "Drop" as never }], { a: "x" })).toBeUndefined();
  });
});

describe("loadRelabelConfig", () => {
  test("a top-level list, or a metric_relabel_configs mapping, or nothing", () => {
    const rules = "- source_labels: [__name__]\n  regex: go_.*\n  action: drop\n";
    expect(loadRelabelConfig(yamlFile(rules))).toEqual([{ source_labels: ["__name__"], regex: "go_.*", action: "drop" }]);
    expect(loadRelabelConfig(yamlFile(`metric_relabel_configs:\n${rules.replace(/^/gm, "  ")}`))).toEqual([
      { source_labels: ["__name__"], regex: "go_.*", action: "drop" },
    ]);
    expect(loadRelabelConfig(yamlFile("# nothing\n"))).toEqual([]);
    expect(() => loadRelabelConfig(yamlFile("relabel_configs: []\n"))).toThrow('unknown key "relabel_configs"');
    expect(() => loadRelabelConfig(yamlFile("- [unclosed\n"))).toThrow();
  });

  test("scalars are read as Go's yaml.v2 reads them into strings; modulus stays a number", () => {
    const [rule] = loadRelabelConfig(
      yamlFile("- source_labels: [enabled]\n  regex: true\n  action: keep\n- source_labels: [a]\n  target_label: h\n  modulus: 8\n  action: hashmod\n"),
    );
    expect(rule).toEqual({ source_labels: ["enabled"], regex: "true", action: "keep" });
    const f = compileRelabel(
      loadRelabelConfig(
        yamlFile("- source_labels: [enabled]\n  regex: true\n  action: keep\n- source_labels: [a]\n  target_label: h\n  modulus: 8\n  action: hashmod\n"),
      ),
    );
    expect(f({ enabled: "true", a: "x" })).toEqual({ enabled: "true", a: "x", h: hashmod("x", 8) });
  });

  test('an explicit null is Go\'s zero value, not the default: `regex:` matches only ""', () => {
    const f = compileRelabel(loadRelabelConfig(yamlFile("- regex:\n  replacement: static\n  target_label: abc\n")));
    expect(f({ a: "x" })).toEqual({ a: "x", abc: "static" }); // no source labels: the value is ""
    const g = compileRelabel(loadRelabelConfig(yamlFile("- source_labels: [a]\n  regex:\n  replacement: static\n  target_label: abc\n")));
    expect(g({ a: "x" })).toEqual({ a: "x" });
  });

  test("the shipped relabel.yaml loads and passes a typical series unchanged", () => {
    const f = compileRelabel(loadRelabelConfig(join(import.meta.dir, "relabel.yaml")));
    const series = {
      __name__: "grpc_server_handling_seconds_bucket",
      grpc_method: "Send",
      grpc_service: "edgechat.v1.ChatService",
      grpc_type: "unary",
      le: "0.005",
      kubernetes_namespace: "edgechat",
      kubernetes_pod_name: "edgechat-7f9c-x2x",
      region: "fra",
      machine: "3d8d9e1c",
    };
    expect(f(series)).toEqual(series);
    expect(f({ __name__: "go_goroutines", region: "fra" })).toEqual({ __name__: "go_goroutines", region: "fra" });
  });
});
