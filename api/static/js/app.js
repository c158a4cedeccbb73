// The shell: who is logged in, a hash router, the navigation filtered by role, login and logout.
// The navigation only hides what a role cannot use; the API decides: a page whose data calls are
// refused (403) shows "Access denied" with the API's reason instead of any data.

import { ApiError, login, logout, me, problemView, startRefresh, stopRefresh, whenUnauthorised } from "./api.js";
import { badge, clear, field, fill, go, h } from "./dom.js";

const OPERATOR = "operator", LEGAL = "legal", OPS = "ops", ADMIN = "admin";

// pattern, page title, roles that may use it (navigation only), module and view, shown in the nav.
const ROUTES = [
  { pattern: "alerts", title: "Alerts", roles: [OPERATOR, ADMIN], module: "./alerts.js", nav: true },
  { pattern: "incidents/:id", title: "Incident", roles: [OPERATOR, LEGAL, ADMIN], module: "./incident.js" },
  { pattern: "cameras", title: "Cameras", roles: [OPERATOR, OPS, ADMIN], module: "./cameras.js", nav: true },
  { pattern: "search", title: "Search", roles: [LEGAL, ADMIN], module: "./legal.js", view: "search", nav: true },
  { pattern: "cases", title: "Cases", roles: [LEGAL, ADMIN], module: "./legal.js", view: "cases", nav: true },
  { pattern: "cases/:id", title: "Case", roles: [LEGAL, ADMIN], module: "./case.js" },
  { pattern: "custody", title: "Custody log", roles: [LEGAL, ADMIN], module: "./legal.js", view: "custody", nav: true },
  { pattern: "disclosures", title: "Disclosures", roles: [LEGAL, ADMIN], module: "./legal.js", view: "disclosures", nav: true },
  { pattern: "health", title: "Health", roles: [OPS, ADMIN], module: "./ops.js", nav: true },
  { pattern: "admin", title: "Users & keys", roles: [ADMIN], module: "./admin.js", nav: true },
];
const HOME = { [OPERATOR]: "alerts", [LEGAL]: "search", [OPS]: "health", [ADMIN]: "alerts" };

const state = { user: null, cleanup: null, generation: 0 };
const main = () => document.getElementById("main");

function parseHash() {
  const raw = window.location.hash.replace(/^#\/?/, "");
  const [path, search] = raw.split("?", 2);
  return { path: decodeURIComponent(path || ""), query: new URLSearchParams(search || "") };
}

function match(path) {
  const parts = path.split("/").filter(Boolean);
  for (const route of ROUTES) {
    const pattern = route.pattern.split("/");
    if (pattern.length !== parts.length) continue;
    const params = {};
    const ok = pattern.every((p, i) => (p.startsWith(":") ? ((params[p.slice(1)] = parts[i]), true) : p === parts[i]));
    if (ok) return { route, params };
  }
  return null;
}

function renderNav(current) {
  const nav = clear(document.getElementById("nav"));
  const who = clear(document.getElementById("who"));
  if (!state.user) return;
  const role = state.user.role;
  for (const route of ROUTES.filter((r) => r.nav && r.roles.includes(role))) {
    nav.append(h("a", { href: `#/${route.pattern}`, "aria-current": current === route ? "page" : null }, route.title));
  }
  who.append(
    h("span", { title: state.user.name }, state.user.display_name || state.user.name),
    badge(role, "role"),
    h("button", { type: "button", onclick: doLogout }, "Log out"));
}

async function doLogout() {
  await logout();
  state.user = null;
  go("login");
}

function accessDenied(error, route) {
  return h("section", { class: "denied panel", "aria-labelledby": "denied-h" },
    h("h1", { id: "denied-h" }, "Access denied"),
    h("p", {}, `Your role (${state.user?.role}) cannot open ${route ? route.title : "this page"}.`),
    error ? problemView(error, "The API refused the request") : null,
    h("p", {}, h("a", { href: `#/${HOME[state.user?.role] || ""}` }, "Back to your start page")));
}

function loginView(query) {
  const error = h("div", { "aria-live": "assertive" });
  const form = h("form", { "aria-label": "Log in" },
    h("h1", {}, "Log in"),
    field("Username", h("input", { name: "username", autocomplete: "username", required: true, autofocus: true })),
    field("Password", h("input", { name: "password", type: "password", autocomplete: "current-password", required: true })),
    h("button", { type: "submit", class: "primary" }, "Log in"),
    error);
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const data = new FormData(form);
    try {
      const token = await login(String(data.get("username")), String(data.get("password")));
      state.user = token.user;
      startRefresh();
      const next = query.get("next");
      go(next && !next.startsWith("login") ? next : HOME[state.user.role] || "");
    } catch (e) {
      error.replaceChildren(problemView(e, e instanceof ApiError && e.status === 423 ? "Account locked" : "Login failed"));
    }
  });
  return h("section", { class: "login panel" }, form);
}

async function route() {
  const generation = ++state.generation;
  if (state.cleanup) {
    try {
      state.cleanup();
    } catch {
      /* a page's teardown must not stop navigation */
    }
    state.cleanup = null;
  }
  const { path, query } = parseHash();
  const container = clear(main());
  if (path === "login" || !state.user) {
    if (!state.user && path !== "login") {
      go(`login?next=${encodeURIComponent(path)}`);
      return;
    }
    renderNav(null);
    container.setAttribute("aria-busy", "false");
    document.title = "Log in · CCTV incidents";
    container.append(loginView(query));
    return;
  }
  const found = match(path);
  if (!found) {
    go(HOME[state.user.role] || "alerts");
    return;
  }
  renderNav(found.route);
  document.title = `${found.route.title} · CCTV incidents`;
  container.setAttribute("aria-busy", "true"); // until the page has its data (assistive tech, tests)
  try {
    const module = await import(found.route.module);
    if (generation !== state.generation) return;
    const cleanup = await module.render(container, { ...found.params, query, view: found.route.view }, {
      user: state.user,
      stale: () => generation !== state.generation,
    });
    if (generation !== state.generation) {
      if (typeof cleanup === "function") cleanup();
      return;
    }
    state.cleanup = typeof cleanup === "function" ? cleanup : null;
  } catch (error) {
    if (generation !== state.generation) return;
    if (error instanceof ApiError && error.status === 401) return; // the login page takes over
    const denied = error instanceof ApiError && error.status === 403;
    fill(container, denied ? accessDenied(error, found.route) : problemView(error, `Cannot show ${found.route.title}`));
  } finally {
    if (generation === state.generation) container.setAttribute("aria-busy", "false");
  }
}

whenUnauthorised(() => {
  state.user = null;
  stopRefresh();
  const { path } = parseHash();
  if (path !== "login") go(`login?next=${encodeURIComponent(path)}`);
});

async function start() {
  try {
    state.user = await me();
    startRefresh();
  } catch {
    state.user = null;
  }
  window.addEventListener("hashchange", route);
  await route();
}

start();
