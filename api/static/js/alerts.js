// Operators' live alert feed: a snapshot of the open alerts, then every change pushed over SSE.
// One card per incident (a new event of the same incident updates its card in place, never a second
// card), with the annotated snapshot, where, what, how long, how sure, and the triage actions.

import { ApiError, apiUrl, describe, get } from "./api.js";
import { ask, badge, duration, field, fill, h, toast, when } from "./dom.js";
import { PAST, act, cameraIndex, ruleLabel } from "./review.js";

const OPEN_REVIEW = ["new", "acknowledged", "escalated"];
const RETRY_MS = 5000;

export async function render(main, _params, ctx) {
  const incidents = new Map(); // incident_id -> IncidentOut
  const fresh = new Set(); // arrived live since the page opened: highlighted once
  const built = new Map(); // incident_id -> {key, el}: the card drawn for that state
  const [first, cameras] = await Promise.all([get("/api/v1/alerts"), cameraIndex()]);
  for (const item of first.items || []) incidents.set(item.incident_id, item);

  const liveDot = h("span", { class: "dot" });
  const liveText = h("span", {}, "Connecting…");
  const count = h("span", { class: "muted" });
  const show = h("select", { name: "show" },
    h("option", { value: "open" }, "Needs attention (new, acknowledged, escalated)"),
    h("option", { value: "new" }, "New only"),
    h("option", { value: "all" }, "All, including dismissed and resolved"));
  const cameraFilter = h("select", { name: "camera" }, h("option", { value: "" }, "All cameras"),
    [...cameras.values()].map((c) => h("option", { value: c.id }, `${c.name} (${c.id})`)));
  const feed = h("div", { class: "feed", role: "feed", "aria-label": "Alerts", "aria-busy": "false" });

  main.append(
    h("div", { class: "toolbar" },
      h("h1", {}, "Alerts"),
      h("span", { class: "live", role: "status", "aria-label": "Live feed status" }, liveDot, liveText),
      count,
      field("Show", show),
      field("Camera", cameraFilter)),
    feed);

  function visible(item) {
    const review = item.review_status || "new";
    if (show.value === "open" && !OPEN_REVIEW.includes(review)) return false;
    if (show.value === "new" && review !== "new") return false;
    return !cameraFilter.value || item.camera_id === cameraFilter.value;
  }

  function draw() {
    const items = [...incidents.values()].filter(visible)
      .sort((a, b) => String(b.threshold_at).localeCompare(String(a.threshold_at)));
    const newCount = [...incidents.values()].filter((i) => (i.review_status || "new") === "new").length;
    count.textContent = `${items.length} shown · ${newCount} new`;
    if (!items.length) {
      fill(feed, h("p", { class: "empty" }, "No alerts to show. New alerts appear here as they happen."));
      return;
    }
    // Cards are rebuilt only when their incident changed: an unchanged card keeps its loaded image.
    const cards = items.map((item, i) => {
      const key = [item.revision, item.review_status, item.assignee, item.updated_at, item.last_event_at].join("|");
      let cached = built.get(item.incident_id);
      if (!cached || cached.key !== key) {
        cached = { key, el: card(item) };
        built.set(item.incident_id, cached);
      }
      cached.el.setAttribute("aria-posinset", String(i + 1));
      cached.el.setAttribute("aria-setsize", String(items.length));
      return cached.el;
    });
    feed.replaceChildren(...cards);
  }

  function upsert(item) {
    const before = incidents.get(item.incident_id);
    if (before && (before.revision ?? 0) > (item.revision ?? 0)) return; // an older push after a newer answer
    incidents.set(item.incident_id, item);
    if (!before) fresh.add(item.incident_id);
  }

  function card(item) {
    const review = item.review_status || "new";
    const camera = cameras.get(item.camera_id);
    const zone = camera?.zones?.find((z) => z.id === item.zone_id);
    const title = `${ruleLabel(item.rule)} on ${camera?.name || item.camera_id}`;
    const headingId = `alert-${item.incident_id}`;
    const confidence = Math.max(0, ...(item.boxes || []).map((b) => b.confidence || 0));
    const change = item.change_region;
    const stamp = encodeURIComponent(item.revision ?? item.last_event_at ?? item.updated_at ?? "");
    const isFresh = fresh.delete(item.incident_id);
    const el = h("article", {
      class: `card ${review}${isFresh ? " fresh" : ""}`,
      "aria-labelledby": headingId,
      dataset: { incident: item.incident_id },
    },
    h("header", {},
      h("h3", { id: headingId }, title),
      badge(review)),
    item.has_snapshot
      ? h("img", {
        class: "snap",
        src: apiUrl(`/api/v1/incidents/${item.incident_id}/snapshot`, { v: stamp }),
        alt: `Snapshot of ${title}, box and zone drawn`,
        loading: "lazy",
      })
      : h("div", { class: "snap empty" }, "No snapshot yet"),
    h("div", { class: "facts" },
      h("span", {}, h("b", {}, "Time "), when(item.threshold_at)),
      h("span", {}, h("b", {}, "Camera "), `${camera?.name || item.camera_id} (${item.camera_id})`),
      h("span", {}, h("b", {}, "Zone "), zone?.name || item.zone_id || "—"),
      change
        ? h("span", {}, h("b", {}, "Changed region "), `${Math.round(change.x2 - change.x1)}×${Math.round(change.y2 - change.y1)} px at ${Math.round(change.x1)},${Math.round(change.y1)}`)
        : h("span", {}, h("b", {}, "Dwell "), duration(item.dwell_s)),
      h("span", {}, h("b", {}, "Confidence "), confidence ? `${Math.round(confidence * 100)}%` : "—"),
      h("span", {}, h("b", {}, "Incident "), item.status, item.last_event_at ? [", last event ", when(item.last_event_at)] : null),
      item.assignee ? h("span", {}, h("b", {}, "Assigned "), item.assignee) : null),
    item.summary ? h("p", { class: "muted" }, item.summary) : null,
    h("div", { class: "actions" },
      review === "new" ? button("Acknowledge", "good", () => triage(item, "acknowledge")) : null,
      review !== "escalated" && review !== "dismissed" ? button("Escalate", "", () => escalate(item)) : null,
      review !== "dismissed" ? button("Dismiss", "danger", () => dismiss(item)) : null,
      item.assignee !== ctx.user.name ? button("Assign to me", "", () => triage(item, "assign", { assignee: ctx.user.name })) : null,
      h("a", { class: "button", href: `#/incidents/${item.incident_id}` }, "Open")));
    return el;

    function button(label, kind, onclick) {
      return h("button", { type: "button", class: kind, onclick, "aria-label": `${label}: ${title}` }, label);
    }
  }

  async function triage(item, action, extra = {}) {
    try {
      const updated = await act(item.incident_id, action, extra);
      if (updated) upsert(updated);
      draw();
      toast(`${ruleLabel(item.rule)} on ${item.camera_id}: ${PAST[action] || action}`);
    } catch (error) {
      toast(describe(error), "error");
    }
  }

  async function escalate(item) {
    const data = await ask("Escalate alert", [{ name: "text", label: "Why (optional)", kind: "textarea" }], "Escalate");
    if (data) await triage(item, "escalate", { text: String(data.get("text") || "").trim() || undefined });
  }

  async function dismiss(item) {
    const data = await ask("Dismiss as false positive",
      [{ name: "text", label: "Reason (required)", kind: "textarea", required: true }], "Dismiss");
    if (data) await triage(item, "dismiss", { text: String(data.get("text")).trim() });
  }

  // ------------------------------------------------------------- the live stream
  let source = null;
  let retry = null;
  let closed = false;

  function live(on, text) {
    liveDot.className = `dot ${on ? "on" : "off"}`;
    liveText.textContent = text;
  }

  function connect() {
    if (closed) return;
    source = new EventSource("/api/v1/alerts/stream");
    source.addEventListener("open", () => live(true, "Live"));
    source.addEventListener("snapshot", (ev) => {
      const data = JSON.parse(ev.data);
      for (const item of data.items || []) upsert(item);
      draw();
    });
    source.addEventListener("incident", (ev) => {
      upsert(JSON.parse(ev.data));
      draw();
    });
    source.addEventListener("error", () => {
      if (source.readyState === EventSource.CLOSED) {
        // Refused (e.g. the session ended): check the session, then try again; the browser
        // retries by itself only while the stream answered 200.
        live(false, "Disconnected, retrying…");
        source.close();
        retry = setTimeout(async () => {
          try {
            await get("/api/v1/auth/me");
            connect();
          } catch (error) {
            if (!(error instanceof ApiError && error.status === 401)) retry = setTimeout(connect, RETRY_MS);
          }
        }, RETRY_MS);
      } else {
        live(false, "Reconnecting…");
      }
    });
  }

  show.addEventListener("change", draw);
  cameraFilter.addEventListener("change", draw);
  draw();
  connect();

  return () => {
    closed = true;
    clearTimeout(retry);
    if (source) source.close();
  };
}
