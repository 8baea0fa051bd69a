// /admin/settings: the organisation's idle and grace times, notices and purge, through
// /api/admin/settings. Keys the form does not show (an `sms:` override, notice texts...) are
// kept as stored; an emptied field gives the key back its default.

import { call, cell, clearErrors, say, showRecentChanges, start } from "./admin_api.js";

const form = document.getElementById("settings-form");
const inputs = () => [...form.querySelectorAll("[data-key]")];
const state = { revision: null, organisation: {} };

function valueOf(input) {
  if (input.type === "checkbox") return input.checked;
  if (input.value.trim() === "") return undefined;
  return input.type === "number" ? Number(input.value) : input.value;
}

function fill(organisation) {
  for (const input of inputs()) {
    const group = input.dataset.group;
    const source = group ? (organisation[group] ?? {}) : organisation;
    const value = source[input.dataset.key];
    if (input.type === "checkbox") input.checked = Boolean(value);
    else input.value = value ?? "";
  }
}

async function load() {
  const settings = await call("GET", "/api/admin/settings");
  state.revision = settings.revision;
  state.organisation = settings.organisation;
  fill(settings.organisation);
  const describe = (value) => (value ? JSON.stringify(value) : "as the organisation");
  document.getElementById("workgroup-care").replaceChildren(
    ...settings.workgroups.map((workgroup) => {
      const row = document.createElement("tr");
      row.append(
        cell(workgroup.name),
        cell(describe(workgroup.timeouts)),
        cell(describe(workgroup.notices)),
        cell(workgroup.max_wait ? JSON.stringify(workgroup.max_wait) : "none"),
      );
      return row;
    }),
  );
}

/** The group's stored keys, overwritten by the form's fields (an empty field removes one). */
function group(name) {
  const result = { ...(state.organisation[name] ?? {}) };
  for (const input of form.querySelectorAll(`[data-group="${name}"]`)) {
    const value = valueOf(input);
    if (value === undefined) delete result[input.dataset.key];
    else result[input.dataset.key] = value;
  }
  return Object.keys(result).length ? result : null;
}

/** Show each problem beside the input it names (`where` is its group, its message starts
 *  with the key), or above the button. */
function showProblems(error) {
  clearErrors(form);
  const problems = error.problems.length ? error.problems : [{ where: "", message: error.message }];
  let first = null;
  for (const problem of problems) {
    const groupName = problem.where.split(".")[0];
    const key = /^[a-z_]+/.exec(problem.message)?.[0];
    const input =
      form.querySelector(`[data-group="${groupName}"][data-key="${key}"]`) ??
      form.querySelector(`[data-key="${key}"]:not([data-group])`);
    const place = input && document.getElementById(input.getAttribute("aria-describedby"));
    const target = place ?? document.getElementById("settings-form-error");
    target.textContent = target.hidden ? problem.message : `${target.textContent} ${problem.message}`;
    target.hidden = false;
    if (input) {
      input.setAttribute("aria-invalid", "true");
      first ??= input;
    }
  }
  first?.focus();
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  const purge = valueOf(document.getElementById("purge-days"));
  try {
    await call("PATCH", "/api/admin/settings", {
      timeouts: group("timeouts"),
      notices: group("notices"),
      purge_after_days: purge ?? null,
      revision: state.revision,
    });
  } catch (error) {
    if (error.code === "stale_revision") {
      say("Someone changed the configuration meanwhile: the page shows it now; save again.");
      await load();
    } else {
      showProblems(error);
    }
    return;
  }
  clearErrors(form);
  say("Settings saved: the next conversations follow them.");
  await Promise.all([load(), showRecentChanges()]);
});

start(load);
