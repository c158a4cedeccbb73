// One case: its exhibits (references numbered by the API, never reused), the legal hold over all of
// them, export bundles, notes and the timeline of everything that happened to it.

import { apiUrl, describe, get, post, put } from "./api.js";
import { ask, badge, facts, field, fill, h, table, toast, when } from "./dom.js";

export async function render(main, params) {
  const id = params.id;
  const summary = h("section", { class: "panel", "aria-label": "Case summary" });
  const exhibits = h("section", { class: "panel", "aria-label": "Exhibits" });
  const hold = h("section", { class: "panel", "aria-label": "Legal hold" });
  const exports = h("section", { class: "panel", "aria-label": "Exports" });
  const notes = h("section", { class: "panel", "aria-label": "Notes" });
  const timeline = h("section", { class: "panel", "aria-label": "Case timeline" });
  const heading = h("div", { class: "toolbar" });
  main.append(heading, h("div", { class: "cols" }, h("div", {}, summary, exhibits, exports), h("div", {}, hold, notes, timeline)));

  let kase = await get(`/api/v1/cases/${id}`);

  function drawCase() {
    fill(heading, h("h1", {}, `Case ${kase.reference}`), h("span", {}, kase.title),
      kase.legal_hold ? badge("legal hold", "hold") : badge("not held", "closed"));
    fill(summary, h("h2", {}, "Summary"), facts([
      ["Reference", kase.reference],
      ["Title", kase.title],
      ["Opened", [when(kase.created_at), ` by ${kase.created_by}`]],
      ["Exhibits", `${kase.item_count} from ${kase.incident_count ?? "?"} incident(s)`],
      ["Exports", String(kase.export_count ?? "—")],
    ]));

    const incidentInput = h("input", { name: "incident_id", size: 38, placeholder: "incident id", pattern: "[0-9a-fA-F-]{36}" });
    fill(exhibits, h("h2", {}, "Exhibits"),
      kase.items.length
        ? table("Exhibits in order", ["Exhibit", "Incident", "Camera", "Sealed", "Added"], kase.items, (i) => h("tr", {},
          h("td", { class: "mono" }, i.exhibit_ref),
          h("td", {}, h("a", { href: `#/incidents/${i.incident_id}` }, String(i.incident_id).slice(0, 8))),
          h("td", {}, i.camera_id),
          h("td", {}, when(i.sealed_at)),
          h("td", {}, [when(i.added_at), ` by ${i.added_by}`])))
        : h("p", { class: "empty" }, "No exhibits yet: add incidents from the Search page or by id below."),
      h("div", { class: "form-row" },
        field("Add incident by id", incidentInput),
        h("button", {
          type: "button",
          onclick: async () => {
            const value = incidentInput.value.trim();
            if (!value) return toast("Give the incident id", "error");
            try {
              const added = await post(`/api/v1/cases/${id}/incidents`, { incident_id: value });
              toast(`Added ${added.map((a) => a.exhibit_ref).join(", ")}`);
              await reload();
            } catch (error) {
              toast(describe(error), "error");
            }
          },
        }, "Add incident"),
        h("a", { href: "#/search" }, "Find incidents")));

    const reason = h("input", { name: "reason", size: 40, required: true });
    fill(hold, h("h2", {}, "Legal hold"),
      h("p", {}, kase.legal_hold
        ? "Every exhibit is under legal hold: the store refuses to delete any version until it is released."
        : "Not held: exhibits follow their normal retention."),
      h("div", { class: "form-row" },
        field("Reason (custody log)", reason),
        h("button", {
          type: "button",
          class: kase.legal_hold ? "" : "danger",
          onclick: async () => {
            const why = reason.value.trim();
            if (!why) return toast("Give a reason: it goes in every exhibit's custody log", "error");
            try {
              const answer = await put(`/api/v1/cases/${id}/legal-hold`, { on: !kase.legal_hold, reason: why });
              toast(answer.case.legal_hold ? `Legal hold placed on ${answer.items.length} exhibit(s)` : "Legal hold released");
              await reload();
            } catch (error) {
              toast(describe(error), "error");
            }
          },
        }, kase.legal_hold ? "Release legal hold" : "Place legal hold")));
  }

  // The forms are built once: a reload after an action refreshes the data, never what is being typed.
  const exportForm = exportControls();
  const exportList = h("div");
  fill(exports, h("h2", {}, "Export bundle"), exportForm, exportList);

  function exportControls() {
    const reason = h("input", { name: "reason", size: 40, required: true });
    const recipient = h("input", { name: "recipient", size: 24 });
    const organisation = h("input", { name: "organisation", size: 24 });
    const contents = h("select", { name: "contents" },
      h("option", { value: "full" }, "Full (master and working copy)"),
      h("option", { value: "redacted" }, "Redacted copies only (third-party disclosure)"));
    const status = h("span", { class: "muted", "aria-live": "polite" });
    const start = h("button", {
      type: "button",
      class: "primary",
      onclick: async () => {
        const why = reason.value.trim();
        if (!why) return toast("Give a reason for the export", "error");
        start.disabled = true;
        status.textContent = "Building and sealing the bundle…";
        try {
          const made = await post("/api/v1/exports", {
            case_id: id,
            reason: why,
            recipient: recipient.value.trim() || undefined,
            organisation: organisation.value.trim() || undefined,
            contents: contents.value,
          });
          status.textContent = "";
          toast(`Export ready: ${made.items.length} exhibit(s), SHA-256 ${made.sha256.slice(0, 12)}…`);
          await reload();
        } catch (error) {
          status.textContent = "";
          toast(describe(error), "error");
        } finally {
          start.disabled = false;
        }
      },
    }, "Start export");
    return h("div", { class: "form-row" },
      field("Reason (required)", reason),
      field("Recipient", recipient),
      field("Organisation", organisation),
      field("Contents", contents),
      start, status);
  }

  async function drawExports() {
    const page = await get("/api/v1/exports", { case_id: id, limit: 50 });
    fill(exportList, page.items.length
      ? table("Exports of this case", ["Made", "By", "Contents", "Recipient", "Exhibits", "SHA-256", ""], page.items, (e) => h("tr", {},
        h("td", {}, when(e.created_at)),
        h("td", {}, e.actor),
        h("td", {}, e.contents),
        h("td", {}, [e.recipient || "—", e.organisation ? ` (${e.organisation})` : ""]),
        h("td", {}, String(e.items.length)),
        h("td", { class: "mono", title: e.sha256 }, `${e.sha256.slice(0, 16)}…`),
        h("td", {}, h("button", { type: "button", "aria-label": `Download export of ${when(e.created_at).textContent}`, onclick: () => download(e) }, "Download"))))
      : h("p", { class: "muted" }, "No exports yet."));
  }

  async function download(exp) {
    const data = await ask("Download export bundle", [{ name: "reason", label: "Reason (custody log)", required: true }], "Download");
    if (!data) return;
    // A plain navigation: the browser saves the ZIP; the API records the download before sending it.
    window.location.assign(apiUrl(exp.download_path, { reason: String(data.get("reason")).trim() }));
  }

  const noteList = h("div");
  const noteText = h("textarea", { name: "note", "aria-label": "Note text" });
  fill(notes, h("h2", {}, "Notes"), noteList, noteText, h("button", {
    type: "button",
    onclick: async () => {
      if (!noteText.value.trim()) return toast("Write the note first", "error");
      try {
        await post(`/api/v1/cases/${id}/notes`, { text: noteText.value.trim() });
        noteText.value = "";
        await reload();
      } catch (error) {
        toast(describe(error), "error");
      }
    },
  }, "Add note"));

  async function drawNotes() {
    const list = await get(`/api/v1/cases/${id}/notes`);
    fill(noteList, list.length
      ? h("ul", { "aria-label": "Case notes" }, list.map((n) => h("li", {}, when(n.at), h("span", { class: "muted" }, ` ${n.actor}: `), n.text)))
      : h("p", { class: "muted" }, "No notes."));
  }

  async function drawTimeline() {
    const events = await get(`/api/v1/cases/${id}/timeline`);
    fill(timeline, h("h2", {}, "Timeline"),
      h("ol", { class: "timeline", "aria-label": "Case timeline" }, events.map((e) => h("li", {},
        when(e.at), " ", badge(e.kind.replaceAll("_", " "), "kind"), " ", e.label,
        e.actor ? h("span", { class: "muted" }, ` — ${e.actor}`) : null,
        e.ref ? h("span", { class: "mono muted" }, ` [${e.ref}]`) : null))));
  }

  async function reload() {
    kase = await get(`/api/v1/cases/${id}`);
    drawCase();
    await Promise.all([drawExports(), drawNotes(), drawTimeline()]);
  }

  drawCase();
  await Promise.all([drawExports(), drawNotes(), drawTimeline()]);
}
