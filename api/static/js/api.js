// The one way the app talks to the API: same-origin fetch with the HttpOnly login cookie,
// X-Requested-With on every change (the API refuses cookie changes without it: forged cross-site
// posts), problem-details errors turned into ApiError, a 401 sends the user to the login page.

import { h } from "./dom.js";

export const CSRF = { "X-Requested-With": "cctv-web" };
const REFRESH_EVERY_MS = 4 * 60 * 1000; // tokens live 15 minutes; each refresh gives a new one

export class ApiError extends Error {
  constructor(status, problem) {
    super(problem?.detail || problem?.title || `HTTP ${status}`);
    this.status = status;
    this.problem = problem || {};
  }
  get title() {
    return this.problem.title || `HTTP ${this.status}`;
  }
}

let onUnauthorised = () => {};
export function whenUnauthorised(handler) {
  onUnauthorised = handler;
}

function url(path, query) {
  const u = new URL(path, window.location.origin);
  for (const [key, value] of Object.entries(query || {})) {
    if (value === undefined || value === null || value === "") continue;
    for (const v of Array.isArray(value) ? value : [value]) u.searchParams.append(key, v);
  }
  return u.pathname + u.search;
}

async function problemOf(response) {
  const type = response.headers.get("content-type") || "";
  if (type.includes("json")) {
    try {
      return await response.json();
    } catch {
      /* fall through */
    }
  }
  return { title: response.statusText || `HTTP ${response.status}`, status: response.status };
}

/** Calls the API: JSON in and out; {raw: true} returns the Response (CSV, images). */
export async function api(path, { method = "GET", body, query, raw = false, quiet401 = false } = {}) {
  const headers = { Accept: "application/json" };
  if (method !== "GET" && method !== "HEAD") Object.assign(headers, CSRF);
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(url(path, query), {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: "same-origin",
    cache: "no-store",
  });
  if (!response.ok) {
    const problem = await problemOf(response);
    const error = new ApiError(response.status, problem);
    if (response.status === 401 && !quiet401) onUnauthorised(error);
    throw error;
  }
  if (raw) return response;
  if (response.status === 204) return null;
  return response.json();
}

export const get = (path, query) => api(path, { query });
export const post = (path, body) => api(path, { method: "POST", body });
export const put = (path, body) => api(path, { method: "PUT", body });
export const apiUrl = url;

/** A problem-details error as a block: title, detail, and each validation error with its field. */
export function problemView(error, heading) {
  const problem = error instanceof ApiError ? error.problem : { title: "Error", detail: String(error) };
  const list = Array.isArray(problem.errors)
    ? h("ul", {}, problem.errors.map((e) => h("li", {}, `${(e.loc || []).filter((p) => p !== "body").join(".")}: ${e.msg}`)))
    : null;
  return h("div", { class: "problem", role: "alert" },
    h("h2", {}, heading || problem.title || "Error"),
    h("p", {}, problem.detail || (heading ? problem.title : "") || ""),
    list,
    error instanceof ApiError ? h("p", { class: "muted mono" }, `HTTP ${error.status}`) : null);
}

export function describe(error) {
  if (!(error instanceof ApiError)) return String(error);
  const problem = error.problem;
  if (Array.isArray(problem.errors) && problem.errors.length) {
    // Validation: each field and what is wrong with it (the detail only repeats them).
    return `${error.title}: ${problem.errors.map((e) => `${(e.loc || []).filter((p) => p !== "body").join(".")}: ${e.msg}`).join("; ")}`;
  }
  return `${error.title}: ${problem.detail || ""}`;
}

// ------------------------------------------------------------------ session

let refreshTimer = null;

export async function login(username, password) {
  return api("/api/v1/auth/login", { method: "POST", body: { username, password }, quiet401: true });
}

export async function logout() {
  stopRefresh();
  try {
    await api("/api/v1/auth/logout", { method: "POST", quiet401: true });
  } catch {
    /* the session may already have ended */
  }
}

export function me() {
  return api("/api/v1/auth/me", { quiet401: true });
}

/** Keeps the session's short-lived token fresh while the app is open (each refresh sets a new cookie). */
export function startRefresh() {
  stopRefresh();
  refreshTimer = setInterval(async () => {
    try {
      await api("/api/v1/auth/refresh", { method: "POST" });
    } catch (error) {
      if (error instanceof ApiError && error.status === 409) stopRefresh(); // an API key: nothing to refresh
    }
  }, REFRESH_EVERY_MS);
}

export function stopRefresh() {
  if (refreshTimer) clearInterval(refreshTimer);
  refreshTimer = null;
}
