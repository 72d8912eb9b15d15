// prom-client's metric classes, each from its own module rather than the package's index: the index
// also loads the cluster aggregator, the Pushgateway and the default Node.js metrics (node:cluster,
// node:https, node:v8 and more), none of which edgechat uses, and which cost its cold start about
// 15 ms (measured on the bytecode bundle). The types are the package's own.
import type * as Prom from "prom-client";

export const Registry: typeof Prom.Registry = require("prom-client/lib/registry");
export const Counter: typeof Prom.Counter = require("prom-client/lib/counter");
export const Gauge: typeof Prom.Gauge = require("prom-client/lib/gauge");
export const Histogram: typeof Prom.Histogram = require("prom-client/lib/histogram");
export const Summary: typeof Prom.Summary = require("prom-client/lib/summary");
export type Registry = Prom.Registry;
export type Counter<T extends string = string> = Prom.Counter<T>;
export type Gauge<T extends string = string> = Prom.Gauge<T>;
export type Histogram<T extends string = string> = Prom.Histogram<T>;
export type Summary<T extends string = string> = Prom.Summary<T>;
