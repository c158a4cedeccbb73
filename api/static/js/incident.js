// One incident: what happened (facts), the clip (H.264 working copy, fetched with a custody reason),
// the timeline of its events and reviews, the snapshots, and for reviewers the triage actions;
// for legal, adding it to a case.

import { api, apiUrl, describe, get, post } from "./api.js";
import { ask, badge, clear, duration, facts, field, fill, h, toast, when } from "./dom.js";
import { PAST, act, cameraIndex, ruleLabel } from "./review.js";

const REVIEWERS = ["operator", "admin"];
const LAWYERS = ["legal", "admin"];

export async function render(main, params, ctx) {
  const id = params.id;
  const [incident, cameras, evidence] = await Promise.all([
    get(`/api/v1/incidents/${id}`),
    cameraIndex(),
    get(`/api/v1/incidents/${id}/evidence`),
  ]);
  const state = { incident };
  const header = h("div");
  const details = h("section", { class: "panel", "aria-label": "Incident details" });
  const actions = h("section", { class: "panel", "aria-label": "Review actions" });
  const timeline = h("section", { class: "panel", "aria-label": "Timeline" });

  main.append(
    header,
    h("div", { class: "cols" },
      h("div", {},
        clipPanel(incident, evidence, ctx),
        gallery(incident)),
      h("div", {}, details, actions, LAWYERS.includes(ctx.user.role) ? casePanel(incident, evidence) : null, timeline)));

  function drawHeader() {
    const i = state.incident;
    const camera = cameras.get(i.camera_id);
    fill(header, h("div", { class: "toolbar" },
      h("h1", {}, `${ruleLabel(i.rule)} on ${camera?.name || i.camera_id}`),
      badge(i.review_status || "new"),
      badge(i.status, i.status === "open" ? "bad" : "closed"),
      h("span", { class: "mono muted", title: "incident id" }, i.incident_id)));
    const zone = camera?.zones?.find((z) => z.id === i.zone_id);
    const confidence = Math.max(0, ...(i.boxes || []).map((b) => b.confidence || 0));
    const change = i.change_region;
    fill(details, h("h2", {}, "Details"), facts([
      ["Camera", `${camera?.name || i.camera_id} (${i.camera_id})`],
      ["Place", camera?.location || "—"],
      ["Zone", zone?.name || i.zone_id || "—"],
      ["Alert time", when(i.threshold_at)],
      ["Started", when(i.started_at)],
      ["Ended", when(i.ended_at)],
      [change ? "Changed region" : "Dwell", change
        ? `${Math.round(change.x2 - change.x1)}×${Math.round(change.y2 - change.y1)} px at ${Math.round(change.x1)},${Math.round(change.y1)}`
        : duration(i.dwell_s)],
      ["Confidence", confidence ? `${Math.round(confidence * 100)}%` : "—"],
      ["Tracks", (i.track_ids || []).join(", ") || "—"],
      ["Assigned to", i.assignee || "nobody"],
      ["Alert latency", i.alert_latency_s != null ? `${i.alert_latency_s.toFixed(1)} s` : "—"],
      ["Summary", i.summary || "—"],
    ]));
  }

  function drawActions() {
    clear(actions);
    if (!REVIEWERS.includes(ctx.user.role)) {
      actions.hidden = true;
      return;
    }
    const i = state.incident;
    const review = i.review_status || "new";
    const note = h("textarea", { name: "note", "aria-label": "Note text", placeholder: "What you saw, who you called…" });
    actions.append(h("h2", {}, "Review"), h("div", { class: "actions" },
      review === "new" ? h("button", { type: "button", class: "good", onclick: () => run("acknowledge") }, "Acknowledge") : null,
      review !== "escalated" ? h("button", { type: "button", onclick: () => withText("escalate", "Escalate", false) }, "Escalate") : null,
      review !== "dismissed" ? h("button", { type: "button", class: "danger", onclick: () => withText("dismiss", "Dismiss as false positive", true) }, "Dismiss") : null,
      !["resolved", "dismissed"].includes(review) ? h("button", { type: "button", onclick: () => run("resolve") }, "Resolve") : null,
      ["resolved", "dismissed"].includes(review) ? h("button", { type: "button", onclick: () => run("reopen") }, "Reopen") : null,
      i.assignee !== ctx.user.name ? h("button", { type: "button", onclick: () => run("assign", { assignee: ctx.user.name }) }, "Assign to me") : null,
      h("button", { type: "button", onclick: assignTo }, "Assign to…")),
    field("Add a note", note, "wide"),
    h("div", { class: "actions" }, h("button", {
      type: "button",
      onclick: async () => {
        const text = note.value.trim();
        if (!text) return toast("Write the note first", "error");
        if (await run("note", { text })) note.value = "";
      },
    }, "Add note")));
  }

  async function run(action, extra = {}) {
    try {
      state.incident = await act(id, action, extra);
      toast(`Incident ${PAST[action] || action}`);
      drawHeader();
      drawActions();
      await drawTimeline();
      return true;
    } catch (error) {
      toast(describe(error), "error");
      return false;
    }
  }

  async function withText(action, title, required) {
    const data = await ask(title, [{ name: "text", label: required ? "Reason (required)" : "Why (optional)", kind: "textarea", required }], title);
    if (data) await run(action, { text: String(data.get("text") || "").trim() || undefined });
  }

  async function assignTo() {
    let people;
    try {
      people = (await get("/api/v1/alerts/assignees")).map((p) => p.username);
    } catch (error) {
      return toast(describe(error), "error");
    }
    const data = await ask("Assign incident", [
      { name: "assignee", label: "Assign to", kind: "select", options: ["(nobody)", ...people], value: state.incident.assignee || "(nobody)" },
    ], "Assign");
    if (!data) return;
    const who = String(data.get("assignee"));
    await run("assign", { assignee: who === "(nobody)" ? null : who });
  }

  async function drawTimeline() {
    const entries = await get(`/api/v1/incidents/${id}/timeline`);
    fill(timeline, h("h2", {}, "Timeline"),
      entries.length
        ? h("ol", { class: "timeline", "aria-label": "Incident timeline" }, entries.map((e) => h("li", {},
          when(e.at), " ", badge(e.kind, "kind"), " ", e.label || "",
          e.actor ? h("span", { class: "muted" }, ` — ${e.actor}`) : null,
          e.detail ? h("div", { class: "muted" }, typeof e.detail === "string" ? e.detail : JSON.stringify(e.detail)) : null)))
        : h("p", { class: "muted" }, "No events yet."));
  }

  drawHeader();
  drawActions();
  await drawTimeline();
}

function clipPanel(incident, evidence, ctx) {
  const panel = h("section", { class: "panel", "aria-label": "Clip" }, h("h2", {}, "Clip"));
  if (!evidence.length) {
    panel.append(h("p", { class: "muted" }, "No sealed evidence yet: the clip appears once the evidence is sealed."));
    return panel;
  }
  for (const item of evidence) {
    const video = h("video", { controls: true, preload: "none", "aria-label": `Clip of evidence ${item.evidence_id}` });
    video.hidden = true;
    const purpose = ctx.user.role === "legal" ? "legal review" : `${ctx.user.role} review`;
    const reason = h("input", { name: "reason", value: `${purpose} of incident ${incident.incident_id}`, size: 50, required: true });
    const status = h("span", { class: "muted", "aria-live": "polite" });
    const play = h("button", {
      type: "button",
      class: "primary",
      onclick: async () => {
        const why = reason.value.trim();
        if (!why) return toast("Give a reason: every viewing is in the custody log", "error");
        play.disabled = true;
        status.textContent = "Loading (hash-checked)…";
        try {
          // One fetch = one custody entry; the player then works on the local copy (seeking included).
          const response = await api(`/api/v1/evidence/${item.evidence_id}/clip`, { query: { reason: why }, raw: true });
          const blob = await response.blob();
          if (video.src) URL.revokeObjectURL(video.src);
          video.src = URL.createObjectURL(blob);
          video.hidden = false;
          status.textContent = `Loaded ${(blob.size / 1048576).toFixed(1)} MB; viewing recorded in the custody log.`;
        } catch (error) {
          status.textContent = "";
          toast(describe(error), "error");
        } finally {
          play.disabled = false;
        }
      },
    }, "Play clip");
    panel.append(
      h("div", { class: "form-row" }, field("Reason for viewing (custody log)", reason), play, status),
      video,
      facts([
        ["Evidence", h("span", { class: "mono" }, item.evidence_id)],
        ["Sealed", when(item.sealed_at)],
        ["Footage", [when(item.first_capture_ts), " – ", when(item.last_capture_ts), ` (${item.frame_count} frames)`]],
        ["Manifest SHA-256", h("span", { class: "mono" }, item.manifest_sha256)],
        ["Retained until", when(item.retain_until)],
        ["Legal hold", item.legal_hold ? badge("held", "hold") : "no (a case hold shows on the case)"],
      ]));
  }
  return panel;
}

function gallery(incident) {
  const figure = (view, caption) => h("figure", {},
    h("img", { src: apiUrl(`/api/v1/incidents/${incident.incident_id}/snapshot`, { view }), alt: caption }),
    h("figcaption", {}, caption));
  return h("section", { class: "panel", "aria-label": "Snapshots" }, h("h2", {}, "Snapshots"),
    h("div", { class: "gallery" },
      incident.has_snapshot ? figure("latest", "Latest snapshot, box and zone drawn") : h("p", { class: "muted" }, "No snapshot."),
      incident.has_before_snapshot ? figure("before", "Before the change") : null));
}

function casePanel(incident, evidence) {
  const panel = h("section", { class: "panel", "aria-label": "Add to case" }, h("h2", {}, "Case"));
  const select = h("select", { name: "case" });
  const load = async () => {
    const cases = await get("/api/v1/cases");
    fill(select, ...cases.map((c) => h("option", { value: c.case_id }, `${c.reference} — ${c.title}`)));
  };
  load().catch((error) => toast(describe(error), "error"));
  panel.append(h("div", { class: "form-row" }, field("Case", select),
    h("button", {
      type: "button",
      disabled: !evidence.length,
      onclick: async () => {
        if (!select.value) return toast("Create a case first (Cases page)", "error");
        try {
          await addIncidentToCase(select.value, incident.incident_id);
          toast("Added to the case");
        } catch (error) {
          toast(describe(error), "error");
        }
      },
    }, "Add to case")),
  evidence.length ? "" : h("p", { class: "muted" }, "Only incidents with sealed evidence can become exhibits."));
  return panel;
}

/** Adds every sealed item of an incident to a case as its next exhibits (numbered by the API). */
export function addIncidentToCase(caseId, incidentId) {
  return post(`/api/v1/cases/${caseId}/incidents`, { incident_id: incidentId });
}
