// Admin: accounts (create, role, cameras, disable, unlock, reset password) and service API keys
// (create: the secret is shown once; revoke). Every change is in the API's auth log.

import { api, describe, get, post } from "./api.js";
import { ask, badge, fill, h, table, toast, when } from "./dom.js";

const ROLES = ["operator", "legal", "ops", "admin"];

function cameraList(text) {
  const list = String(text || "").split(",").map((c) => c.trim()).filter(Boolean);
  return list.length ? list : null;
}

export async function render(main) {
  const users = h("section", { class: "panel", "aria-labelledby": "admin-users" });
  const keys = h("section", { class: "panel", "aria-labelledby": "admin-keys" });
  main.append(h("h1", {}, "Users and API keys"), users, keys);

  async function drawUsers() {
    const list = await get("/api/v1/users");
    fill(users, 
      h("div", { class: "toolbar" }, h("h2", { id: "admin-users" }, "Accounts"), h("button", { type: "button", class: "primary", onclick: createUser }, "New account")),
      table("Accounts", ["Username", "Name", "Role", "Cameras", "State", "Last login", ""], list, (u) => h("tr", {},
        h("td", { class: "mono" }, u.username),
        h("td", {}, u.display_name),
        h("td", {}, u.role),
        h("td", {}, u.cameras ? u.cameras.join(", ") : "all"),
        h("td", {}, u.disabled ? badge("disabled", "closed") : u.locked_until && new Date(u.locked_until) > new Date() ? badge("locked", "bad") : badge("active", "ok")),
        h("td", {}, when(u.last_login_at)),
        h("td", {}, h("div", { class: "actions" },
          h("button", { type: "button", "aria-label": `${u.disabled ? "Enable" : "Disable"} ${u.username}`, onclick: () => patch(u, { disabled: !u.disabled }) }, u.disabled ? "Enable" : "Disable"),
          u.locked_until ? h("button", { type: "button", "aria-label": `Unlock ${u.username}`, onclick: () => patch(u, { unlock: true }) }, "Unlock") : null,
          h("button", { type: "button", "aria-label": `Edit ${u.username}`, onclick: () => editUser(u) }, "Edit"),
          h("button", { type: "button", "aria-label": `Set password of ${u.username}`, onclick: () => resetPassword(u) }, "Set password"))))));
  }

  async function patch(user, body) {
    try {
      await api(`/api/v1/users/${user.user_id}`, { method: "PATCH", body });
      toast(`${user.username} updated`);
      await drawUsers();
    } catch (error) {
      toast(describe(error), "error");
    }
  }

  async function createUser() {
    const data = await ask("New account", [
      { name: "username", label: "Username", required: true },
      { name: "display_name", label: "Display name" },
      { name: "role", label: "Role", kind: "select", options: ROLES, value: "operator" },
      { name: "password", label: "Initial password", type: "password", required: true },
      { name: "cameras", label: "Cameras (comma-separated; empty: all)" },
    ], "Create");
    if (!data) return;
    try {
      await post("/api/v1/users", {
        username: String(data.get("username")).trim(),
        display_name: String(data.get("display_name") || "").trim(),
        role: String(data.get("role")).trim(),
        password: String(data.get("password")),
        cameras: cameraList(data.get("cameras")),
      });
      toast("Account created");
      await drawUsers();
    } catch (error) {
      toast(describe(error), "error");
    }
  }

  async function editUser(user) {
    const data = await ask(`Edit ${user.username}`, [
      { name: "display_name", label: "Display name", value: user.display_name, required: true },
      { name: "role", label: "Role", kind: "select", options: ROLES, value: user.role },
      { name: "cameras", label: "Cameras (comma-separated; empty: all)", value: (user.cameras || []).join(", ") },
    ], "Save");
    if (!data) return;
    const cameras = cameraList(data.get("cameras"));
    await patch(user, {
      display_name: String(data.get("display_name")).trim(),
      role: String(data.get("role")).trim(),
      ...(cameras ? { cameras } : { all_cameras: true }),
    });
  }

  async function resetPassword(user) {
    const data = await ask(`New password for ${user.username}`, [{ name: "password", label: "Password", type: "password", required: true }], "Set");
    if (!data) return;
    try {
      await api(`/api/v1/users/${user.user_id}/password`, { method: "PUT", body: { password: String(data.get("password")) } });
      toast("Password set; the user's sessions have ended");
    } catch (error) {
      toast(describe(error), "error");
    }
  }

  async function drawKeys() {
    const list = await get("/api/v1/api-keys");
    fill(keys, 
      h("div", { class: "toolbar" }, h("h2", { id: "admin-keys" }, "API keys"), h("button", { type: "button", class: "primary", onclick: createKey }, "New API key")),
      table("API keys", ["Name", "Prefix", "Role", "Cameras", "Created", "Last used", "State", ""], list, (k) => h("tr", {},
        h("td", {}, k.name),
        h("td", { class: "mono" }, `${k.prefix}…`),
        h("td", {}, k.role),
        h("td", {}, k.cameras ? k.cameras.join(", ") : "all"),
        h("td", {}, [when(k.created_at), ` by ${k.created_by}`]),
        h("td", {}, when(k.last_used_at)),
        h("td", {}, k.revoked_at ? badge("revoked", "closed") : badge("active", "ok")),
        h("td", {}, k.revoked_at ? null : h("button", {
          type: "button",
          class: "danger",
          "aria-label": `Revoke ${k.name}`,
          onclick: async () => {
            try {
              await api(`/api/v1/api-keys/${k.key_id}`, { method: "DELETE" });
              toast(`Key ${k.name} revoked`);
              await drawKeys();
            } catch (error) {
              toast(describe(error), "error");
            }
          },
        }, "Revoke")))));
  }

  async function createKey() {
    const data = await ask("New API key", [
      { name: "name", label: "Name (the service that uses it)", required: true },
      { name: "role", label: "Role", kind: "select", options: ROLES, value: "ops" },
      { name: "cameras", label: "Cameras (comma-separated; empty: all)" },
    ], "Create");
    if (!data) return;
    try {
      const made = await post("/api/v1/api-keys", {
        name: String(data.get("name")).trim(),
        role: String(data.get("role")).trim(),
        cameras: cameraList(data.get("cameras")),
      });
      await ask(`Key ${made.name} created: copy it now, it is never shown again`, [{ name: "key", label: "Secret", value: made.key, readonly: true }], "Done");
      await drawKeys();
    } catch (error) {
      toast(describe(error), "error");
    }
  }

  await Promise.all([drawUsers(), drawKeys()]);
}
