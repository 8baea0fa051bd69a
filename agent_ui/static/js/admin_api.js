// The administration pages' shared part: calls to /api/admin/... (docs/http_api.md,
// "Administration"), refusals shown next to the field they name, the status line, and the
// recent changes read from the audit. Each page's module (admin_<section>.js) uses it.

import { fullTime } from "./format.js";

/** A refusal of the admin API: `status`, `code`, `detail`, `field`, `problems`. */
export class Refused extends Error {
  constructor(status, body) {
    super(body?.detail ?? `The server answered ${status}.`);
    this.status = status;
    this.code = body?.error ?? "error";
    this.field = body?.field ?? null;
    this.problems = body?.problems ?? [];
  }
}

/** Call the admin API; resolve with the JSON answer (null for 204), reject with `Refused`. */
export async function call(method, path, body) {
  const init = { method, headers: {} };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let answer;
  try {
    answer = await fetch(path, init);
  } catch {
    throw new Refused(0, { error: "offline", detail: "Parley cannot be reached: try again." });
  }
  if (answer.status === 401) {
    window.location.assign("/sign-in");
  }
  const json = answer.status === 204 ? null : await answer.json().catch(() => null);
  if (!answer.ok) throw new Refused(answer.status, json);
  return json;
}

const statusLine = () => document.getElementById("admin-status");

/** Say what happened in the status line (announced to screen readers). */
export function say(text) {
  statusLine().textContent = text;
}

/** Forget the errors shown in `form`. */
export function clearErrors(form) {
  for (const element of form.querySelectorAll(".field-error, .error[role=alert]")) {
    element.hidden = true;
    element.textContent = "";
  }
  for (const element of form.querySelectorAll("[aria-invalid]")) {
    element.removeAttribute("aria-invalid");
  }
}

/** Show `error` next to its field in the form whose ids start with `prefix` (e.g. "user"),
 *  or above the buttons when it names none; focus the field. A stale revision says so. */
export function showError(form, prefix, error) {
  clearErrors(form);
  let text = error.message;
  if (error.code === "stale_revision") {
    text = "Someone changed the configuration meanwhile: the page shows it now; make the change again.";
  } else if (error.problems.length > 1) {
    text += ` (and ${error.problems.length - 1} more problem${error.problems.length > 2 ? "s" : ""})`;
  }
  const place = error.field && document.getElementById(`${prefix}-${error.field}-error`);
  const target = place ?? document.getElementById(`${prefix}-form-error`);
  target.textContent = text;
  target.hidden = false;
  const input = error.field && form.querySelector(`[data-field="${error.field}"]`);
  if (place && input) {
    input.setAttribute("aria-invalid", "true");
    (input.matches("div") ? input.querySelector("input") ?? input : input).focus();
  }
}

/** A table cell with `text`. */
export function cell(text) {
  const td = document.createElement("td");
  td.textContent = text ?? "";
  return td;
}

/** A cell holding small buttons: `actions` is [[label, handler], ...]. */
export function actionCell(actions) {
  const td = document.createElement("td");
  td.className = "row-actions";
  for (const [label, handler] of actions) {
    const button = document.createElement("button");
    button.type = "button";
    button.className = "quiet";
    button.textContent = label;
    button.addEventListener("click", handler);
    td.append(button);
  }
  return td;
}

/** Checkboxes named `names` in `container`, those of `checked` ticked. */
export function fillChecks(container, names, checked = []) {
  container.replaceChildren();
  for (const name of names) {
    const label = document.createElement("label");
    label.className = "check";
    const box = document.createElement("input");
    box.type = "checkbox";
    box.value = name;
    box.checked = checked.includes(name);
    label.append(box, ` ${name}`);
    container.append(label);
  }
}

export function checkedValues(container) {
  return [...container.querySelectorAll("input:checked")].map((box) => box.value);
}

/** "name=value" lines as an object; values are strings (or whole numbers when `numbers`). */
export function parseLines(text, { numbers = false } = {}) {
  const result = {};
  for (const line of text.split("\n")) {
    if (!line.trim()) continue;
    const at = line.indexOf("=");
    const key = (at < 0 ? line : line.slice(0, at)).trim();
    const value = at < 0 ? "" : line.slice(at + 1).trim();
    result[key] = numbers && /^-?\d+$/.test(value) ? Number(value) : value;
  }
  return result;
}

// The audit's tables and actions, as the recent changes name them.
const ENTITIES = {
  app_user: "user",
  api_token: "API token",
  broker_account: "account",
  phone_number: "number",
  workgroup_member: "member",
  routing_profile: "profile",
  inbound_route: "inbound route",
  outbound_route: "outbound route",
};
const ACTIONS = {
  create: "Added",
  update: "Changed",
  delete: "Removed",
  deactivate: "Removed (kept for history)",
  set_password: "New password for",
  revoke: "Revoked",
};

/** Fill the "Recent changes" list from the audit table. */
export async function showRecentChanges() {
  const list = document.getElementById("recent-changes");
  const { entries } = await call("GET", "/api/admin/audit?limit=12");
  list.replaceChildren();
  for (const entry of entries) {
    const item = document.createElement("li");
    const what = document.createElement("span");
    what.className = "change-what";
    const thing = ENTITIES[entry.entity] ?? entry.entity.replaceAll("_", " ");
    what.textContent = `${ACTIONS[entry.action] ?? entry.action} ${thing} ${entry.key}`;
    const who = document.createElement("span");
    who.className = "muted change-who";
    who.textContent = `${entry.actor} · ${fullTime(entry.at)}`;
    const shown = entry.after ?? entry.before;
    if (shown) item.title = JSON.stringify(shown);
    item.append(what, who);
    list.append(item);
  }
  document.getElementById("recent-changes-none").hidden = entries.length > 0;
}

/** Ask whether to remove `what`, then DELETE `path` at the page's `revision`; say what
 *  happened, and call `reload` (the page's load) after the removal or a stale revision. */
export async function removeAfterAsking({ what, path, revision, reload }) {
  if (!window.confirm(`Remove ${what}?`)) return;
  let answer;
  try {
    answer = await call("DELETE", `${path}?revision=${revision}`);
  } catch (error) {
    say(`${what} was not removed: ${error.message}`);
    if (error.code === "stale_revision") await reload();
    return;
  }
  // a user conversations refer to is kept, deactivated: the answer's `kept` says why
  const text = answer?.kept ? `${what} removed: ${answer.kept}.` : `${what} removed.`;
  await announceChange(text, reload);
}

/** Make a form's change: `send()` makes the calls. On a refusal, show it in `form` (its ids
 *  start with `prefix`, see `showError`), call `reload` after a stale revision, and resolve
 *  false; resolve true when the change is made (then `announceChange`). */
export async function sendForm({ form, prefix, reload, send }) {
  try {
    await send();
  } catch (error) {
    showError(form, prefix, error);
    if (error.code === "stale_revision") await reload();
    return false;
  }
  return true;
}

/** After a change: say `text`, then call `reload` (the page's load) and show the recent changes. */
export async function announceChange(text, reload) {
  say(text);
  await Promise.all([reload(), showRecentChanges()]);
}

/** Run a page's `load` now, and the recent changes; show a failure in the status line. The
 *  forms' controls are disabled meanwhile: nothing typed or ticked before the stored values
 *  arrive can be overwritten by them. */
export async function start(load) {
  const main = document.querySelector("main");
  const controls = [...main.querySelectorAll("form :is(input, select, textarea, button)")].filter(
    (control) => !control.disabled,
  );
  for (const control of controls) control.disabled = true;
  main.setAttribute("aria-busy", "true");
  try {
    await Promise.all([load(), showRecentChanges()]);
  } catch (error) {
    say(error.message);
  } finally {
    for (const control of controls) control.disabled = false;
    main.removeAttribute("aria-busy");
  }
}
