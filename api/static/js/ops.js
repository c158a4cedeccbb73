// Ops: every component's health (database, object store, broker), each consumer group's lag, the
// workers, camera counts; and the throughput and latency panels from this API instance's metrics.
// Refreshed every 5 s. Throughput is the difference of two reads of a counter (per second); the
// sparklines hold the last few minutes seen by this page.

import { describe, get } from "./api.js";
import { badge, fill, h, s, table, when } from "./dom.js";

const REFRESH_MS = 5000;
const HISTORY = 60; // points per sparkline: 5 minutes at 5 s

export async function render(main) {
  const overall = h("span");
  const updated = h("span", { class: "muted" });
  const summary = h("section", { class: "panel", "aria-label": "Cameras summary" });
  const health = h("section", { class: "panel", "aria-labelledby": "ops-components" });
  const groups = h("section", { class: "panel", "aria-labelledby": "ops-groups" });
  const workers = h("section", { class: "panel", "aria-labelledby": "ops-workers" });
  const throughput = h("section", { class: "panel", "aria-labelledby": "ops-throughput" });
  const latency = h("section", { class: "panel", "aria-labelledby": "ops-latency" });
  main.append(h("div", { class: "toolbar" }, h("h1", {}, "System health"), overall, updated),
    summary, h("div", { class: "cols" }, h("div", {}, health, groups, workers), h("div", {}, throughput, latency)));

  const previous = new Map(); // counter key -> {value, at}
  const rates = new Map(); // counter key -> [per-second rates]
  const p95s = new Map(); // histogram key -> [p95]

  async function refresh() {
    const [state, metrics] = await Promise.all([get("/api/v1/ops/health"), get("/api/v1/ops/metrics")]);
    overall.replaceChildren(badge(state.ok ? "all healthy" : "degraded", state.ok ? "ok" : "bad"));
    updated.replaceChildren("as of ", when(state.at));
    drawSummary(summary, state.cameras);
    drawHealth(health, groups, workers, state);
    drawMetrics(throughput, latency, metrics, { previous, rates, p95s });
  }

  await refresh();
  const timer = setInterval(() => refresh().catch((e) => updated.replaceChildren(`refresh failed: ${describe(e)}`)), REFRESH_MS);
  return () => clearInterval(timer);
}

function tile(label, value, kind) {
  return h("div", { class: `metric ${kind || ""}`, role: "group", "aria-label": label },
    h("span", { class: "v" }, value), h("span", { class: "k" }, label));
}

function drawSummary(panel, cameras) {
  fill(panel, h("h2", {}, "Cameras"),
    tile("online", String(cameras.online)),
    tile("offline", String(cameras.offline)),
    tile("stale heartbeat", String(cameras.stale)),
    tile("total", String(cameras.total)),
    h("a", { href: "#/cameras" }, "Cameras wall"));
}

function ok(flag) {
  return badge(flag ? "ok" : "failing", flag ? "ok" : "bad");
}

function drawHealth(health, groups, workers, state) {
  fill(health, h("h2", { id: "ops-components" }, "Components"),
    table("Component health", ["Component", "State", "Detail", "Probe"], state.components, (c) => h("tr", {},
      h("th", { scope: "row" }, c.name.replaceAll("_", " ")),
      h("td", {}, ok(c.ok)),
      h("td", {}, c.detail),
      h("td", { class: "mono" }, `${c.duration_ms} ms`))));

  fill(groups, h("h2", { id: "ops-groups" }, "Consumer lag"),
    state.consumer_groups.length
      ? table("Consumer groups", ["Group", "Role", "Topic", "State", "Lag", "Partitions"], state.consumer_groups, (g) => h("tr", {},
        h("td", { class: "mono" }, g.group),
        h("td", {}, g.role || "other"),
        h("td", { class: "mono" }, g.topic),
        h("td", {}, ok(g.ok), g.detail ? h("div", { class: "muted" }, g.detail) : null),
        h("td", { class: "mono" }, g.lag == null ? "—" : String(g.lag)),
        h("td", { class: "mono" }, g.partitions.map((p) => `p${p.partition}: ${p.lag}`).join(", ") || "—")))
      : h("p", { class: "muted" }, "No consumer groups found."));

  fill(workers, h("h2", { id: "ops-workers" }, "Workers"),
    state.workers.length
      ? table("Workers", ["Worker", "Kind", "Group", "Cameras", "Last heartbeat", "State"], state.workers, (w) => h("tr", {},
        h("td", { class: "mono" }, w.name),
        h("td", {}, w.kind),
        h("td", { class: "mono" }, w.group || "—"),
        h("td", {}, w.cameras.join(", ") || "—"),
        h("td", {}, when(w.last_heartbeat_at)),
        h("td", {}, w.stale === null ? "—" : badge(w.stale ? "stale" : "ok", w.stale ? "stale" : "ok"))))
      : h("p", { class: "muted" }, "No workers seen."));
}

function key(sample) {
  const labels = Object.entries(sample.labels || {}).map(([k, v]) => `${k}=${v}`).join(", ");
  return labels ? `${sample.name} {${labels}}` : sample.name;
}

function push(map, k, value) {
  const list = map.get(k) || [];
  list.push(value);
  if (list.length > HISTORY) list.shift();
  map.set(k, list);
  return list;
}

function spark(values, label) {
  if (values.length < 2) return h("span", { class: "muted" }, "collecting…");
  const max = Math.max(...values), min = Math.min(...values, 0);
  const points = values.map((v, i) => `${i / (values.length - 1)},${1 - (v - min) / (max - min || 1)}`).join(" ");
  return s("svg", { class: "spark", viewBox: "0 0 1 1", preserveAspectRatio: "none", role: "img", "aria-label": label },
    s("polyline", { points }));
}

function seconds(value) {
  if (value === null || value === undefined) return "—";
  return value < 1 ? `${Math.round(value * 1000)} ms` : `${value.toFixed(2)} s`;
}

function drawMetrics(throughput, latency, metrics, memory) {
  const at = new Date(metrics.at).getTime() / 1000;
  const counters = metrics.counters.map((c) => {
    const k = key(c);
    const before = memory.previous.get(k);
    memory.previous.set(k, { value: c.value, at });
    const rate = before && at > before.at ? Math.max(0, (c.value - before.value) / (at - before.at)) : null;
    return { ...c, k, rate, history: rate === null ? memory.rates.get(k) || [] : push(memory.rates, k, rate) };
  });
  fill(throughput, h("h2", { id: "ops-throughput" }, "Throughput"),
    counters.length
      ? table("Counters (this API instance)", ["Metric", "Total", "Per second", "Last 5 min"], counters, (c) => h("tr", {},
        h("td", { class: "mono" }, c.k),
        h("td", { class: "mono" }, String(Math.round(c.value))),
        h("td", { class: "mono" }, c.rate === null ? "—" : c.rate.toFixed(2)),
        h("td", {}, spark(c.history, `${c.k} per second`))))
      : h("p", { class: "muted" }, "Nothing counted yet."),
    metrics.gauges.length
      ? table("Gauges", ["Metric", "Value"], metrics.gauges, (g) => h("tr", {},
        h("td", { class: "mono" }, key(g)),
        h("td", { class: "mono" }, g.name.endsWith("timestamp_seconds") && g.value > 0 ? when(new Date(g.value * 1000).toISOString()) : String(g.value))))
      : null);

  fill(latency, h("h2", { id: "ops-latency" }, "Latency"),
    metrics.histograms.length
      ? table("Latency histograms", ["Metric", "Count", "p50", "p95", "p95, last 5 min"], metrics.histograms, (m) => {
        const k = key(m);
        const history = m.p95 === null ? memory.p95s.get(k) || [] : push(memory.p95s, k, m.p95);
        return h("tr", {},
          h("td", { class: "mono" }, k),
          h("td", { class: "mono" }, String(Math.round(m.count))),
          h("td", { class: "mono" }, seconds(m.p50)),
          h("td", { class: "mono" }, seconds(m.p95)),
          h("td", {}, spark(history, `${k} p95`)));
      })
      : h("p", { class: "muted" }, "No latency observed yet (alert latency appears with the first alert)."));
}
