// The cameras wall: each camera's status (online/offline, fps, lag, last frame) and its latest frame
// with the zones drawn over it; the zones and rule settings are edited here, checked in the browser
// first (ids, polygons inside the frame) and then by the API, whose verdict is shown as given.

import { apiUrl, describe, get, put } from "./api.js";
import { ago, badge, field, fill, h, s, toast, when } from "./dom.js";

const REFRESH_MS = 5000;
const NO_FOOTAGE_ROLES = ["ops"]; // they see health, never pictures (the API refuses them the frame)
const EDITOR_ROLES = ["operator", "ops", "admin"]; // who may change zones and rules (the API decides; this hides the button)
const FRAME_EVERY = 3; // a new frame every 3rd refresh (15 s): each one is read from the frames topic
const ZONE_ID = /^[A-Za-z0-9_.-]{1,64}$/;

export async function render(main, _params, ctx) {
  const wall = h("div", { class: "wall", role: "list", "aria-label": "Cameras" });
  const editor = h("section", { class: "panel", "aria-label": "Zone editor" });
  editor.hidden = true;
  main.append(h("div", { class: "toolbar" }, h("h1", {}, "Cameras"),
    h("span", { class: "muted" }, "Status refreshes every 5 s; times are Europe/London, UTC on hover.")), editor, wall);
  const tiles = new Map(); // camera id -> {el, update}
  const footage = !NO_FOOTAGE_ROLES.includes(ctx.user.role);
  const edit = EDITOR_ROLES.includes(ctx.user.role) ? (c) => openEditor(editor, c, footage, refresh) : null;
  let cycle = 0;

  async function refresh() {
    const cameras = await get("/api/v1/cameras");
    const newFrame = cycle++ % FRAME_EVERY === 0;
    for (const camera of cameras) {
      let tile = tiles.get(camera.id);
      if (!tile) {
        tile = tileFor(camera, footage, edit);
        tiles.set(camera.id, tile);
        wall.append(tile.el);
      }
      tile.update(camera, newFrame);
    }
    if (!cameras.length) fill(wall, h("p", { class: "empty" }, "No cameras you may see."));
  }

  await refresh();
  const timer = setInterval(() => refresh().catch((e) => toast(describe(e), "error")), REFRESH_MS);
  return () => clearInterval(timer);
}

function state(camera) {
  const health = camera.health;
  if (camera.online === true) return ["online", "online"];
  if (!health) return ["no heartbeat", "offline"];
  if (health.stale) return ["stale", "stale"];
  return [health.state, health.state === "online" ? "online" : "offline"];
}

function tileFor(camera, footage, onEdit) {
  const title = h("h3", { id: `cam-${camera.id}` });
  const status = h("span");
  const stats = h("div", { class: "facts" });
  const overlay = s("svg", { viewBox: "0 0 1 1", preserveAspectRatio: "none", "aria-hidden": "true" });
  const image = h("img", { alt: `Latest frame of ${camera.name}` });
  const noFrame = h("div", { class: "nofeed" }, footage ? "No recent frame" : "Pictures are not shown to your role");
  const frame = h("div", { class: "frame" }, noFrame);
  if (footage) {
    image.hidden = true;
    image.addEventListener("error", () => { image.hidden = true; noFrame.hidden = false; });
    image.addEventListener("load", () => { image.hidden = false; noFrame.hidden = true; });
    frame.append(image);
  }
  frame.append(overlay);
  const el = h("article", { class: "panel", role: "listitem", "aria-labelledby": `cam-${camera.id}` },
    h("header", { class: "toolbar" }, title, status),
    frame, stats,
    onEdit ? h("div", { class: "actions" }, h("button", { type: "button", onclick: () => onEdit(current) }, `Edit zones of ${camera.name}`)) : null);
  let current = camera;

  function update(cam, newFrame) {
    current = cam;
    title.textContent = `${cam.name} (${cam.id})`;
    const [label, kind] = state(cam);
    status.replaceChildren(badge(label, kind), cam.enabled === false ? badge("disabled", "closed") : "");
    const health = cam.health || {};
    const lag = cam.lag_s ?? (health.last_frame_at ? (Date.now() - new Date(health.last_frame_at)) / 1000 : null);
    stats.replaceChildren(
      h("span", {}, h("b", {}, "Place "), cam.location || "—"),
      h("span", {}, h("b", {}, "FPS "), health.fps != null ? `${Number(health.fps).toFixed(1)} / ${cam.fps}` : `— / ${cam.fps}`),
      h("span", {}, h("b", {}, "Lag "), lag != null ? `${Number(lag).toFixed(1)} s` : "—"),
      h("span", {}, h("b", {}, "Last frame "), health.last_frame_at ? [when(health.last_frame_at), ` (${ago(health.last_frame_at)})`] : "—"),
      health.error ? h("span", { class: "muted" }, h("b", {}, "Error "), health.error) : "");
    drawZones(overlay, cam.settings?.zones || cam.zones || []);
    if (footage && newFrame) image.src = apiUrl(`/api/v1/cameras/${cam.id}/frame`, { t: Date.now() });
  }
  return { el, update };
}

function drawZones(svg, zones) {
  svg.replaceChildren(...zones.filter((z) => Array.isArray(z.polygon) && z.polygon.length >= 3).flatMap((z) => {
    const points = z.polygon.map(([x, y]) => `${x},${y}`).join(" ");
    const [lx, ly] = z.polygon[0];
    return [
      s("polygon", { class: "zone", points }, s("title", {}, z.name || z.id)),
      s("text", { class: "zone-label", x: lx, y: ly, "font-size": "0.04" }, z.name || z.id),
    ];
  }));
}

// ------------------------------------------------------------------ zone editor

function polygonText(polygon) {
  return (polygon || []).map(([x, y]) => `${+Number(x).toFixed(4)},${+Number(y).toFixed(4)}`).join("; ");
}

function parsePolygon(text) {
  const points = text.split(";").map((p) => p.trim()).filter(Boolean).map((p) => p.split(",").map((v) => Number(v.trim())));
  if (points.length < 3) throw new Error("a zone needs at least 3 points");
  for (const p of points) {
    if (p.length !== 2 || p.some((v) => !Number.isFinite(v) || v < 0 || v > 1)) {
      throw new Error(`each point is "x,y" with both between 0 and 1 (fractions of the frame): got "${p.join(",")}"`);
    }
  }
  return points;
}

async function openEditor(panel, camera, footage, refresh) {
  let loaded;
  try {
    loaded = await get(`/api/v1/cameras/${camera.id}/settings`);
  } catch (error) {
    toast(describe(error), "error");
    return;
  }
  const settings = loaded.settings || {};
  const version = loaded.version ?? null;
  const zones = (settings.zones || []).map((z) => ({ ...z }));
  const rows = h("tbody");
  const other = { ...settings };
  delete other.zones;
  const otherText = h("textarea", { name: "camera_settings", "aria-label": "Camera-wide rule settings (JSON)" }, JSON.stringify(other, null, 2));
  const reason = h("input", { name: "reason", size: 40, required: true });
  const problems = h("div", { "aria-live": "assertive" });
  const overlay = s("svg", { viewBox: "0 0 1 1", preserveAspectRatio: "none", "aria-hidden": "true" });
  const preview = h("div", { class: "frame" },
    footage ? h("img", { src: apiUrl(`/api/v1/cameras/${camera.id}/frame`, { t: Date.now() }), alt: `Latest frame of ${camera.name} with the edited zones` }) : null,
    overlay);
  let drawing = null; // the zone row whose polygon clicks on the preview replace

  preview.addEventListener("click", (ev) => {
    if (!drawing) return;
    const box = preview.getBoundingClientRect();
    const x = (ev.clientX - box.left) / box.width, y = (ev.clientY - box.top) / box.height;
    const now = drawing.polygon.value.trim();
    drawing.polygon.value = `${now ? `${now}; ` : ""}${x.toFixed(4)},${y.toFixed(4)}`;
    redraw();
  });

  function row(zone) {
    const inputs = {
      id: h("input", { "aria-label": "Zone id", value: zone.id || "", size: 10 }),
      name: h("input", { "aria-label": "Zone name", value: zone.name || "", size: 14 }),
      polygon: h("input", { "aria-label": "Zone polygon (x,y; x,y; …, fractions 0–1)", value: polygonText(zone.polygon), size: 44 }),
      rules: h("textarea", { "aria-label": "Zone rules (JSON)", rows: 2 }, JSON.stringify(zone.rules || {}, null, 1)),
    };
    for (const input of Object.values(inputs)) input.addEventListener("input", redraw);
    const tr = h("tr", {},
      h("td", {}, inputs.id), h("td", {}, inputs.name), h("td", {}, inputs.polygon), h("td", {}, inputs.rules),
      h("td", {},
        h("button", { type: "button", onclick: () => { inputs.polygon.value = ""; drawing = inputs; toast("Click the frame to place the points"); } }, "Draw"),
        h("button", { type: "button", class: "danger", onclick: () => { tr.remove(); redraw(); } }, "Remove")));
    tr.inputs = inputs;
    return tr;
  }

  function collect() {
    const out = [];
    const seen = new Set();
    for (const tr of rows.children) {
      const i = tr.inputs;
      const id = i.id.value.trim();
      if (!ZONE_ID.test(id)) throw new Error(`zone id "${id}": 1–64 letters, digits, "_", "." or "-"`);
      if (seen.has(id)) throw new Error(`zone id "${id}" is used twice`);
      seen.add(id);
      let rules;
      try {
        rules = JSON.parse(i.rules.value || "{}");
      } catch {
        throw new Error(`zone "${id}": the rules are not valid JSON`);
      }
      out.push({ id, name: i.name.value.trim(), polygon: parsePolygon(i.polygon.value), rules });
    }
    return out;
  }

  function redraw() {
    const shown = [];
    for (const tr of rows.children) {
      try {
        shown.push({ id: tr.inputs.id.value, name: tr.inputs.name.value, polygon: parsePolygon(tr.inputs.polygon.value) });
      } catch {
        /* not a polygon yet: not drawn */
      }
    }
    drawZones(overlay, shown);
  }

  async function save() {
    problems.replaceChildren();
    let body;
    try {
      body = { settings: { ...JSON.parse(otherText.value || "{}"), zones: collect() }, reason: reason.value.trim() };
      if (!body.reason) throw new Error("give a reason for the change (it is kept with the new version)");
    } catch (error) {
      problems.replaceChildren(h("div", { class: "problem", role: "alert" }, h("h2", {}, "Not saved"), h("p", {}, error.message)));
      return;
    }
    if (version !== null) body.expected_version = version;
    try {
      await put(`/api/v1/cameras/${camera.id}/settings`, body);
      toast(`Settings of ${camera.name} saved`);
      panel.hidden = true;
      await refresh();
    } catch (error) {
      problems.replaceChildren(h("div", { class: "problem", role: "alert" }, h("h2", {}, "The API refused the change"), h("p", {}, describe(error))));
    }
  }

  rows.append(...zones.map(row));
  fill(panel, 
    h("div", { class: "toolbar" }, h("h2", {}, `Zones and rules of ${camera.name}`),
      h("span", { class: "muted" }, version ? `version ${version}, saved by ${loaded.created_by}: ${loaded.reason}` : "version 0: the registry file's")),
    h("div", { class: "cols" },
      h("div", {},
        h("table", {}, h("caption", { class: "muted" }, "Zones"),
          h("thead", {}, h("tr", {}, ["Id", "Name", "Polygon", "Rules", ""].map((c) => h("th", { scope: "col" }, c)))), rows),
        h("div", { class: "actions" }, h("button", { type: "button", onclick: () => { rows.append(row({ id: `zone${rows.children.length + 1}`, polygon: [] })); } }, "Add zone")),
        field("Camera-wide rules (JSON)", otherText, "wide")),
      preview),
    h("div", { class: "form-row" }, field("Reason for the change", reason),
      h("button", { type: "button", class: "primary", onclick: save }, "Save settings"),
      h("button", { type: "button", onclick: () => { panel.hidden = true; } }, "Close")),
    problems);
  redraw();
  panel.hidden = false;
  panel.scrollIntoView();
}
