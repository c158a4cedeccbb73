// What the alert feed and the incident page share: triage actions, camera names, rule labels.

import { ApiError, api, get } from "./api.js";

export const PAST = {
  acknowledge: "acknowledged",
  escalate: "escalated",
  dismiss: "dismissed as false positive",
  resolve: "resolved",
  reopen: "reopened",
  assign: "assigned",
  note: "note added",
};

const RULES = {
  loitering: "Loitering",
  group_loitering: "Group loitering",
  tamper: "Camera tamper",
  area_change: "Area change",
  object_removed: "Object removed",
  classifier: "Classifier",
};

export function ruleLabel(rule) {
  return RULES[rule] || rule || "Pending";
}

export const RULE_CHOICES = Object.entries(RULES);

/**
 * A triage action on an incident; returns the incident as it now is, read back after the action,
 * so the screen shows what the server recorded.
 */
export async function act(incidentId, action, extra = {}) {
  const body = { action, ...extra };
  for (const key of Object.keys(body)) if (body[key] === undefined) delete body[key];
  await api(`/api/v1/incidents/${incidentId}/actions`, { method: "POST", body });
  return get(`/api/v1/incidents/${incidentId}`);
}

/** Cameras the caller may see, by id (an empty map when the caller may not list them). */
export async function cameraIndex() {
  try {
    const cameras = await get("/api/v1/cameras");
    return new Map(cameras.map((c) => [c.id, c]));
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) throw error;
    return new Map();
  }
}
