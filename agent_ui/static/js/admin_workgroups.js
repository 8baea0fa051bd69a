// /admin/workgroups: workgroups (add, change, remove) through /api/admin/workgroups.

import {
  actionCell,
  announceChange,
  call,
  cell,
  checkedValues,
  clearErrors,
  fillChecks,
  removeAfterAsking,
  sendForm,
  start,
} from "./admin_api.js";
import { phone } from "./format.js";

const form = document.getElementById("workgroup-form");
const field = (name) => document.getElementById(`workgroup-${name}`);
const members = document.getElementById("workgroup-members");
const state = { revision: null, usernames: [], editing: null };

function fillForm(workgroup) {
  state.editing = workgroup?.name ?? null;
  clearErrors(form);
  field("name").value = workgroup?.name ?? "";
  field("name").readOnly = Boolean(workgroup);
  field("strategy").value = workgroup?.strategy ?? "longest_idle";
  field("offer").value = workgroup?.offer_timeout_s ?? 30;
  field("wrap-up").value = workgroup?.wrap_up_timeout_s ?? 60;
  fillChecks(members, state.usernames, workgroup?.members ?? []);
  document.getElementById("workgroup-form-title").textContent = workgroup
    ? `Change ${workgroup.name}`
    : "Add a workgroup";
  document.getElementById("workgroup-save").textContent = workgroup
    ? "Save the changes"
    : "Add the workgroup";
  document.getElementById("workgroup-cancel").hidden = !workgroup;
  if (workgroup) field("strategy").focus();
}

function number(input) {
  return input.value === "" ? null : Number(input.value);
}

async function load() {
  const [workgroups, users] = await Promise.all([
    call("GET", "/api/admin/workgroups"),
    call("GET", "/api/admin/users"),
  ]);
  state.revision = workgroups.revision;
  state.usernames = users.users.map((user) => user.username);
  if (!state.editing) fillChecks(members, state.usernames, checkedValues(members));
  document.getElementById("workgroup-rows").replaceChildren(
    ...workgroups.workgroups.map((workgroup) => {
      const row = document.createElement("tr");
      row.dataset.name = workgroup.name;
      row.append(
        cell(workgroup.name),
        cell(workgroup.members.join(", ") || "—"),
        cell(workgroup.strategy),
        cell(`${workgroup.offer_timeout_s} s`),
        cell(`${workgroup.wrap_up_timeout_s} s`),
        cell(workgroup.numbers.map(phone).join(", ") || "—"),
        actionCell([
          ["Change", () => fillForm(workgroup)],
          ["Remove", () => remove(workgroup)],
        ]),
      );
      return row;
    }),
  );
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  const body = {
    members: checkedValues(members),
    strategy: field("strategy").value,
    offer_timeout_s: number(field("offer")),
    wrap_up_timeout_s: number(field("wrap-up")),
    revision: state.revision,
  };
  const editing = state.editing;
  const name = editing ?? field("name").value.trim();
  const sent = await sendForm({
    form,
    prefix: "workgroup",
    reload: load,
    send: () =>
      editing
        ? call("PATCH", `/api/admin/workgroups/${encodeURIComponent(editing)}`, body)
        : call("POST", "/api/admin/workgroups", { name, ...body }),
  });
  if (!sent) return;
  fillForm(null);
  await announceChange(editing ? `${name} changed.` : `${name} added.`, load);
});

document.getElementById("workgroup-cancel").addEventListener("click", () => fillForm(null));

function remove(workgroup) {
  return removeAfterAsking({
    what: `the workgroup ${workgroup.name}`,
    path: `/api/admin/workgroups/${encodeURIComponent(workgroup.name)}`,
    revision: state.revision,
    reload: load,
  });
}

start(async () => {
  await load();
  fillForm(null);
});
