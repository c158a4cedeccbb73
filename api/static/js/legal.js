// The legal team's pages: incident search (and building a case from the results), the case list,
// the custody log and the disclosure log, both exportable as CSV.
// Filters live in the URL (#/search?camera_id=cam1...): a search can be bookmarked or sent on.

import { apiUrl, describe, get, post } from "./api.js";
import { ask, badge, field, go, h, table, toast, when } from "./dom.js";
import { RULE_CHOICES, cameraIndex, ruleLabel } from "./review.js";

const PAGE = 50;
const REVIEW_STATES = ["new", "acknowledged", "escalated", "dismissed", "resolved"];
const VIEWS = { search, cases, custody, disclosures };
const CUSTODY_ACTIONS = [
  "created", "sealed", "viewed", "downloaded", "download_refused", "exported", "shared", "share_used",
  "share_revoked", "hold_placed", "hold_released", "retention_extended", "redacted", "fixity_checked",
  "added_to_case",
];

export function render(main, params, ctx) {
  return VIEWS[params.view](main, params.query, ctx);
}

/** A filter form whose submit puts its values in the URL (the route then re-renders with them). */
function filterForm(label, route, query, fields) {
  const form = h("form", { class: "panel form-row", role: "search", "aria-label": label }, fields,
    h("button", { type: "submit", class: "primary" }, "Search"),
    h("button", { type: "reset" }, "Clear"));
  for (const el of form.querySelectorAll("input, select")) {
    const value = query.get(el.name);
    if (value === null) continue;
    el.value = el.type === "datetime-local" ? localInput(value) : value;
  }
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const next = new URLSearchParams();
    for (const [key, value] of new FormData(form)) {
      if (!value) continue;
      const el = form.elements.namedItem(key);
      next.set(key, el?.type === "datetime-local" ? new Date(String(value)).toISOString() : String(value));
    }
    go(`${route}?${next}`);
  });
  form.addEventListener("reset", () => setTimeout(() => go(route)));
  return form;
}

function localInput(iso) {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return "";
  const pad = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

function queryObject(query, keys) {
  const out = {};
  for (const key of keys) if (query.get(key)) out[key] = query.get(key);
  return out;
}

function pager(route, query, total, offset) {
  const at = (o) => {
    const next = new URLSearchParams(query);
    next.set("offset", String(Math.max(0, o)));
    return `#/${route}?${next}`;
  };
  return h("nav", { class: "actions", "aria-label": "Pages" },
    h("span", { class: "muted" }, `${total ? offset + 1 : 0}–${Math.min(offset + PAGE, total)} of ${total}`),
    offset > 0 ? h("a", { class: "button", href: at(offset - PAGE) }, "Previous") : null,
    offset + PAGE < total ? h("a", { class: "button", href: at(offset + PAGE) }, "Next") : null);
}

// ------------------------------------------------------------------ search

async function search(main, query) {
  const offset = Number(query.get("offset") || 0);
  const filters = queryObject(query, ["camera_id", "place", "rule", "status", "review_status", "since", "until"]);
  const [cameras, page, caseList] = await Promise.all([
    cameraIndex(),
    get("/api/v1/incidents", { ...filters, limit: PAGE, offset }),
    get("/api/v1/cases"),
  ]);
  const selected = new Set();
  const form = filterForm("Search incidents", "search", query, [
    field("Camera", h("select", { name: "camera_id" }, h("option", { value: "" }, "Any"),
      [...cameras.values()].map((c) => h("option", { value: c.id }, `${c.name} (${c.id})`)))),
    field("Place", h("input", { name: "place", placeholder: "street, site…" })),
    field("Type", h("select", { name: "rule" }, h("option", { value: "" }, "Any"),
      RULE_CHOICES.map(([value, label]) => h("option", { value }, label)))),
    field("Status", h("select", { name: "status" }, h("option", { value: "" }, "Any"),
      ["open", "closed", "pending"].map((v) => h("option", { value: v }, v)))),
    field("Review", h("select", { name: "review_status" }, h("option", { value: "" }, "Any"),
      REVIEW_STATES.map((v) => h("option", { value: v }, v)))),
    field("From", h("input", { name: "since", type: "datetime-local" })),
    field("To", h("input", { name: "until", type: "datetime-local" })),
  ]);

  const caseSelect = h("select", { name: "case" },
    h("option", { value: "new" }, "New case…"),
    caseList.map((c) => h("option", { value: c.case_id }, `${c.reference} — ${c.title}`)));
  const addButton = h("button", { type: "button", class: "primary", disabled: true, onclick: addSelected }, "Add selected to case");
  const chosen = h("span", { class: "muted", "aria-live": "polite" }, "0 selected");
  const refresh = () => {
    chosen.textContent = `${selected.size} selected`;
    addButton.disabled = selected.size === 0;
  };

  const results = table("Matching incidents", ["", "Alert time", "Camera", "Place", "Type", "Status", "Review", ""],
    page.items, (i) => {
      const camera = cameras.get(i.camera_id);
      const box = h("input", {
        type: "checkbox",
        "aria-label": `Select incident ${i.incident_id.slice(0, 8)} (${camera?.name || i.camera_id})`,
        onchange: (ev) => {
          if (ev.target.checked) selected.add(i.incident_id);
          else selected.delete(i.incident_id);
          refresh();
        },
      });
      return h("tr", {},
        h("td", {}, box),
        h("td", {}, when(i.threshold_at)),
        h("td", {}, camera?.name || i.camera_id),
        h("td", {}, camera?.location || "—"),
        h("td", {}, ruleLabel(i.rule)),
        h("td", {}, badge(i.status, i.status === "open" ? "bad" : "closed")),
        h("td", {}, badge(i.review_status || "new")),
        h("td", {}, h("a", { href: `#/incidents/${i.incident_id}` }, "Open")));
    });

  async function addSelected() {
    let caseId = caseSelect.value;
    try {
      if (caseId === "new") {
        const created = await newCase();
        if (!created) return;
        caseId = created.case_id;
      }
      let exhibits = 0;
      for (const incidentId of selected) exhibits += (await post(`/api/v1/cases/${caseId}/incidents`, { incident_id: incidentId })).length;
      toast(`${exhibits} exhibit(s) added from ${selected.size} incident(s)`);
      go(`cases/${caseId}`);
    } catch (error) {
      toast(describe(error), "error");
    }
  }

  main.append(h("h1", {}, "Search incidents"), form,
    h("section", { class: "panel", "aria-label": "Results" },
      h("div", { class: "toolbar" }, chosen, field("Case", caseSelect), addButton, pager("search", query, page.total, offset)),
      page.items.length ? results : h("p", { class: "empty" }, "No incident matches these filters.")));
}

/** Asks for a reference and title and opens the case; null when cancelled. */
export async function newCase() {
  const data = await ask("New case", [
    { name: "reference", label: "Reference (e.g. ASB-2025-014)", required: true },
    { name: "title", label: "Title", required: true },
  ], "Create case");
  if (!data) return null;
  const created = await post("/api/v1/cases", { reference: String(data.get("reference")).trim(), title: String(data.get("title")).trim() });
  toast(`Case ${created.reference} opened`);
  return created;
}

// ------------------------------------------------------------------ cases

async function cases(main) {
  const list = await get("/api/v1/cases");
  main.append(
    h("div", { class: "toolbar" }, h("h1", {}, "Cases"),
      h("button", {
        type: "button",
        class: "primary",
        onclick: async () => {
          try {
            const created = await newCase();
            if (created) go(`cases/${created.case_id}`);
          } catch (error) {
            toast(describe(error), "error");
          }
        },
      }, "New case")),
    h("section", { class: "panel" }, list.length
      ? table("Cases, newest first", ["Reference", "Title", "Exhibits", "Hold", "Opened", "By"], list, (c) => h("tr", {},
        h("td", {}, h("a", { href: `#/cases/${c.case_id}` }, c.reference)),
        h("td", {}, c.title),
        h("td", {}, String(c.item_count)),
        h("td", {}, c.legal_hold ? badge("legal hold", "hold") : h("span", { class: "muted" }, "none")),
        h("td", {}, when(c.created_at)),
        h("td", {}, c.created_by)))
      : h("p", { class: "empty" }, "No cases yet. Build one from the Search page, or open one here.")));
}

// ------------------------------------------------------------------ custody log

async function custody(main, query) {
  const offset = Number(query.get("offset") || 0);
  const filters = queryObject(query, ["evidence_id", "case_id", "actor", "action", "since", "until"]);
  const page = await get("/api/v1/custody/entries", { ...filters, order: "desc", limit: PAGE, offset });
  const csv = apiUrl("/api/v1/custody/entries", { ...filters, order: "desc", format: "csv" });
  main.append(
    h("div", { class: "toolbar" }, h("h1", {}, "Custody log"), h("a", { class: "button", href: csv, download: "" }, "Export CSV")),
    filterForm("Filter custody log", "custody", query, [
      field("Evidence id", h("input", { name: "evidence_id", size: 36 })),
      field("Case id", h("input", { name: "case_id", size: 36 })),
      field("Who", h("input", { name: "actor" })),
      field("Action", h("select", { name: "action" }, h("option", { value: "" }, "Any"),
        CUSTODY_ACTIONS.map((a) => h("option", { value: a }, a.replaceAll("_", " "))))),
      field("From", h("input", { name: "since", type: "datetime-local" })),
      field("To", h("input", { name: "until", type: "datetime-local" })),
    ]),
    h("section", { class: "panel" }, pager("custody", query, page.total, offset),
      table("Custody entries, newest first", ["Time", "Action", "Who", "Role", "Reason", "Evidence", "Seq", "Object"], page.items, (e) => h("tr", {},
        h("td", {}, when(e.at)),
        h("td", {}, badge(e.action, "kind")),
        h("td", {}, e.actor),
        h("td", {}, e.role),
        h("td", {}, e.reason || "—"),
        h("td", { class: "mono" }, e.exhibit_ref || String(e.evidence_id).slice(0, 8)),
        h("td", { class: "mono" }, String(e.seq)),
        h("td", { class: "mono wrap", title: e.object_sha256 || "" }, e.object_key || "—")))));
}

// ------------------------------------------------------------------ disclosure log

async function disclosures(main, query) {
  const filters = queryObject(query, ["since", "until"]);
  const rows = await get("/api/v1/disclosures", filters);
  const csv = apiUrl("/api/v1/disclosures", { ...filters, format: "csv" });
  main.append(
    h("div", { class: "toolbar" }, h("h1", {}, "Disclosure log"), h("a", { class: "button", href: csv, download: "" }, "Export CSV")),
    filterForm("Filter disclosures", "disclosures", query, [
      field("From", h("input", { name: "since", type: "datetime-local" })),
      field("To", h("input", { name: "until", type: "datetime-local" })),
    ]),
    h("section", { class: "panel" }, rows.length
      ? table("Disclosures, oldest first", ["Date", "Kind", "Contents", "Recipient", "Organisation", "Reason", "By", "Exhibits", "Status"], rows, (d) => h("tr", {},
        h("td", {}, when(d.date)),
        h("td", {}, d.kind),
        h("td", {}, badge(d.contents, d.contents === "full" ? "warn" : "ok")),
        h("td", {}, d.recipient || "—"),
        h("td", {}, d.organisation || "—"),
        h("td", {}, d.reason),
        h("td", {}, `${d.shared_by} (${d.role})`),
        h("td", { class: "mono" }, (d.exhibit_refs || []).join(", ")),
        h("td", {}, d.revoked_at ? "revoked" : d.expires_at ? ["expires ", when(d.expires_at), ` · ${d.uses ?? 0} uses`] : "—")))
      : h("p", { class: "empty" }, "Nothing has been disclosed yet.")));
}
