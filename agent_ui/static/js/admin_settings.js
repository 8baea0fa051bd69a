// /admin/settings: the organisation's idle and grace times, notices and purge, through
// /api/admin/settings. Keys the form does not show (an `sms:` override, notice texts...) are
// kept as stored; an emptied field gives the key back its default.

import { announceChange, call, cell, clearErrors, say, start } from "./admin_api.js";

const form = document.getElementById("settings-form");
const inputs = () => [...form.querySelectorAll("[data-key]")];
const state = { revision: null, organisation: {}, workgroups: [] };

function valueOf(input) {
  if (input.type === "checkbox") return input.checked;
  if (input.value.trim() === "") return undefined;
  if (input.tagName === "SELECT") return input.value === "true";
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
  state.workgroups = settings.workgroups;
  fill(settings.organisation);
  const select = document.getElementById("care-workgroup");
  const chosen = select.value;
  select.replaceChildren(...settings.workgroups.map((w) => new Option(w.name, w.name)));
  if (chosen) select.value = chosen;
  fillWorkgroup();
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

/** The group's `stored` keys, overwritten by the fields of `within` (an empty field removes
 *  one); null when none is left. */
function group(name, stored = state.organisation[name], within = form) {
  const result = { ...(stored ?? {}) };
  for (const input of within.querySelectorAll(`[data-group="${name}"]`)) {
    const value = valueOf(input);
    if (value === undefined) delete result[input.dataset.key];
    else result[input.dataset.key] = value;
  }
  return Object.keys(result).length ? result : null;
}

/** Show each problem of `error` beside the input of `within` it names (its group is in
 *  `where`, its message starts with the key), or in `fallback`. */
function showProblems(error, within = form, fallback = "settings-form-error") {
  clearErrors(within);
  const problems = error.problems.length ? error.problems : [{ where: "", message: error.message }];
  let first = null;
  for (const problem of problems) {
    const groups = problem.where.split(".");
    const key = /^[a-z_]+/.exec(problem.message)?.[0];
    const input =
      groups
        .map((name) => within.querySelector(`[data-group="${name}"][data-key="${key}"]`))
        .find(Boolean) ?? within.querySelector(`[data-key="${key}"]:not([data-group])`);
    const place = input && document.getElementById(input.getAttribute("aria-describedby"));
    const target = place ?? document.getElementById(fallback);
    target.textContent = target.hidden ? problem.message : `${target.textContent} ${problem.message}`;
    target.hidden = false;
    if (input) {
      input.setAttribute("aria-invalid", "true");
      first ??= input;
    }
  }
  first?.focus();
}

/** A refused save: after a stale revision say so and reload, otherwise `show` the problems. */
async function refused(error, show) {
  if (error.code === "stale_revision") {
    say("Someone changed the configuration meanwhile: the page shows it now; save again.");
    await load();
  } else {
    show();
  }
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
    await refused(error, () => showProblems(error));
    return;
  }
  clearErrors(form);
  await announceChange("Settings saved: the next conversations follow them.", load);
});

// a workgroup's own settings

const careForm = document.getElementById("care-form");

function chosenWorkgroup() {
  const name = document.getElementById("care-workgroup").value;
  return state.workgroups.find((workgroup) => workgroup.name === name);
}

function fillWorkgroup() {
  const workgroup = chosenWorkgroup();
  clearErrors(careForm);
  for (const input of careForm.querySelectorAll("[data-key]")) {
    const value = workgroup?.[input.dataset.group]?.[input.dataset.key];
    input.value = value === undefined || value === null ? "" : String(value);
  }
}

document.getElementById("care-workgroup").addEventListener("change", fillWorkgroup);

careForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  const workgroup = chosenWorkgroup();
  if (!workgroup) return;
  try {
    await call("PATCH", `/api/admin/workgroups/${encodeURIComponent(workgroup.name)}`, {
      timeouts: group("timeouts", workgroup.timeouts, careForm),
      notices: group("notices", workgroup.notices, careForm),
      revision: state.revision,
    });
  } catch (error) {
    await refused(error, () => showProblems(error, careForm, "care-form-error"));
    return;
  }
  await announceChange(`${workgroup.name}'s settings saved.`, load);
});

start(load);
