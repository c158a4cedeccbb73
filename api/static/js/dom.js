// DOM helpers. Every piece of server text goes in through textContent or an attribute, never
// innerHTML: a camera name or a note cannot become markup (and the CSP forbids inline script anyway).

const SVG_NS = "http://www.w3.org/2000/svg";

function put(el, attrs) {
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") el.setAttribute("class", value);
    else if (key === "text") el.textContent = String(value);
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (key.startsWith("on") && typeof value === "function") el.addEventListener(key.slice(2), value);
    else if (value === true) el.setAttribute(key, "");
    else el.setAttribute(key, String(value));
  }
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** An element: h("button", {class: "primary", onclick: f}, "Acknowledge"). Strings become text nodes. */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  put(el, attrs);
  append(el, children);
  return el;
}

/** An SVG element (zone overlays, sparklines). */
export function s(tag, attrs, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  put(el, attrs);
  append(el, children);
  return el;
}

/** Navigates within the app (the router renders the page). */
export function go(path) {
  window.location.hash = `#/${path}`;
}

export function clear(el) {
  el.replaceChildren();
  return el;
}

/** Replaces an element's children (null, undefined and false are skipped, as in h()). */
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

const LONDON = new Intl.DateTimeFormat("en-GB", {
  timeZone: "Europe/London",
  year: "numeric", month: "2-digit", day: "2-digit",
  hour: "2-digit", minute: "2-digit", second: "2-digit",
  timeZoneName: "short",
});

/** A <time>: Europe/London wall-clock (what the control room and the court read), UTC on hover. */
export function when(iso) {
  if (!iso) return h("span", { class: "muted" }, "—");
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return h("span", {}, String(iso));
  return h("time", { datetime: date.toISOString(), title: `UTC ${date.toISOString().replace(".000Z", "Z")}` },
    LONDON.format(date));
}

export function ago(iso) {
  if (!iso) return "—";
  const seconds = Math.round((Date.now() - new Date(iso).getTime()) / 1000);
  if (seconds < 60) return `${Math.max(seconds, 0)}s ago`;
  if (seconds < 3600) return `${Math.round(seconds / 60)}m ago`;
  if (seconds < 86400) return `${Math.round(seconds / 3600)}h ago`;
  return `${Math.round(seconds / 86400)}d ago`;
}

export function duration(seconds) {
  if (seconds === null || seconds === undefined) return "—";
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  return `${Math.floor(s / 60)}m ${String(s % 60).padStart(2, "0")}s`;
}

export function badge(text, kind) {
  return h("span", { class: `badge ${kind || text || ""}` }, text || "—");
}

/** A <dl> of label → value pairs; values may be nodes or text. */
export function facts(pairs) {
  const dl = h("dl", { class: "kv" });
  for (const [label, value] of pairs) dl.append(h("dt", {}, label), h("dd", {}, value ?? "—"));
  return dl;
}

let fieldCount = 0;

/**
 * A form control with its visible label, tied by for/id (the label's text alone is the control's
 * accessible name; a <select> nested in its <label> would be named by its options too).
 */
export function field(text, control, kind) {
  if (!control.id) control.id = `field-${++fieldCount}`;
  return h("div", { class: `field ${kind || ""}` }, h("label", { for: control.id }, text), control);
}

/** A table with a caption (its accessible name), header row and one row per item. */
export function table(caption, columns, rows, rowFn) {
  return h("table", {},
    h("caption", { class: "muted", text: caption }),
    h("thead", {}, h("tr", {}, columns.map((c) => h("th", { scope: "col" }, c)))),
    h("tbody", {}, rows.map(rowFn)));
}

export function toast(message, kind = "ok") {
  const box = document.getElementById("toasts");
  const el = h("div", { class: `toast ${kind}` }, message);
  box.append(el);
  setTimeout(() => el.remove(), kind === "error" ? 9000 : 4000);
}

function control(f) {
  if (f.kind === "textarea") return h("textarea", { name: f.name, required: f.required, text: f.value || "" });
  if (f.kind === "select") {
    return h("select", { name: f.name, required: f.required },
      f.options.map((o) => h("option", { value: o, selected: o === f.value }, o)));
  }
  return h("input", { name: f.name, required: f.required, value: f.value || "", type: f.type || "text", readonly: f.readonly });
}

/** A modal form: resolves to the FormData on submit, null on cancel. */
export function ask(title, fields, submitLabel = "OK") {
  return new Promise((resolve) => {
    const form = h("form", { method: "dialog" },
      h("h2", {}, title),
      fields.map((f) => field(f.label, control(f), "wide")),
      h("div", { class: "actions" },
        h("button", { type: "submit", class: "primary", value: "ok" }, submitLabel),
        h("button", { type: "button", value: "cancel", onclick: () => dialog.close("cancel") }, "Cancel")));
    const dialog = h("dialog", { "aria-label": title }, form);
    document.body.append(dialog);
    dialog.addEventListener("close", () => {
      const data = dialog.returnValue === "ok" ? new FormData(form) : null;
      dialog.remove();
      resolve(data);
    });
    form.addEventListener("submit", (ev) => {
      ev.preventDefault();
      dialog.close("ok");
    });
    dialog.showModal();
  });
}
