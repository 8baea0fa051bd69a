// /admin/users: users (add, change, remove, password) and API tokens, through
// /api/admin/users and /api/admin/tokens. Changes carry the revision the page read: a change
// made meanwhile by someone else is refused (409) and the page reloads what is stored.

import {
  actionCell,
  announceChange,
  call,
  cell,
  checkedValues,
  clearErrors,
  fillChecks,
  parseLines,
  removeAfterAsking,
  say,
  sendForm,
  showError,
  start,
} from "./admin_api.js";
import { fullTime, phone } from "./format.js";

const form = document.getElementById("user-form");
const field = (name) => document.getElementById(`user-${name}`);
const workgroupBox = document.getElementById("user-workgroups");
const state = { revision: null, users: [], workgroups: [], editing: null };

function skillsText(skills) {
  return Object.entries(skills ?? {}).map(([skill, level]) => `${skill}=${level}`).join("\n");
}

function fillForm(user) {
  state.editing = user?.username ?? null;
  clearErrors(form);
  field("username").value = user?.username ?? "";
  field("username").readOnly = Boolean(user);
  field("display-name").value = user?.display_name ?? "";
  field("role").value = user?.role ?? "agent";
  field("profile").value = user?.routing_profile ?? "";
  field("skills").value = skillsText(user?.skills);
  field("alerts").checked = Boolean(user?.send_alerts);
  field("password").value = "";
  fillChecks(workgroupBox, state.workgroups, user?.workgroups ?? []);
  document.getElementById("user-form-title").textContent = user
    ? `Change ${user.username}`
    : "Add a user";
  document.getElementById("user-save").textContent = user ? "Save the changes" : "Add the user";
  document.getElementById("user-password-hint").textContent = user
    ? "(a new one, or empty to keep theirs)"
    : "(optional; at least 8 characters)";
  document.getElementById("user-cancel").hidden = !user;
  if (user) field("display-name").focus();
}

function userRow(user) {
  const row = document.createElement("tr");
  row.dataset.username = user.username;
  row.append(
    cell(user.username),
    cell(user.display_name),
    cell(user.role),
    cell(user.routing_profile ?? "—"),
    cell(user.workgroups.join(", ") || "—"),
    cell(user.numbers.map(phone).join(", ") || "—"),
    cell(user.has_password ? "set" : "none"),
    actionCell([
      ["Change", () => fillForm(user)],
      ["Remove", () => remove(user)],
    ]),
  );
  return row;
}

async function load() {
  const [users, workgroups] = await Promise.all([
    call("GET", "/api/admin/users"),
    call("GET", "/api/admin/workgroups"),
  ]);
  state.revision = users.revision;
  state.users = users.users;
  state.workgroups = workgroups.workgroups.map((workgroup) => workgroup.name);
  const profile = field("profile");
  const chosen = profile.value;
  profile.replaceChildren(new Option("None (only their own queue)", ""));
  for (const name of users.profiles) profile.append(new Option(name, name));
  profile.value = chosen;
  document.getElementById("user-rows").replaceChildren(...state.users.map(userRow));
  const tokenUser = document.getElementById("token-user");
  tokenUser.replaceChildren(...state.users.map((user) => new Option(user.username, user.username)));
  if (!state.editing) fillChecks(workgroupBox, state.workgroups, checkedValues(workgroupBox));
  await loadTokens();
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  const body = {
    display_name: field("display-name").value.trim() || null,
    role: field("role").value,
    routing_profile: field("profile").value || null,
    skills: parseLines(field("skills").value, { numbers: true }),
    send_alerts: field("alerts").checked,
    workgroups: checkedValues(workgroupBox),
    revision: state.revision,
  };
  const password = field("password").value;
  const editing = state.editing;
  const sent = await sendForm({
    form,
    prefix: "user",
    reload: load,
    send: async () => {
      if (editing) {
        await call("PATCH", `/api/admin/users/${encodeURIComponent(editing)}`, body);
        if (password) {
          await call("PUT", `/api/admin/users/${encodeURIComponent(editing)}/password`, {
            password,
          });
        }
      } else {
        const username = field("username").value.trim();
        await call("POST", "/api/admin/users", {
          username,
          ...body,
          ...(password ? { password } : {}),
        });
      }
    },
  });
  if (!sent) return;
  const name = editing ?? field("username").value.trim();
  fillForm(null);
  await announceChange(editing ? `${name} changed.` : `${name} added.`, load);
});

document.getElementById("user-cancel").addEventListener("click", () => fillForm(null));

function remove(user) {
  return removeAfterAsking({
    what: user.username,
    path: `/api/admin/users/${encodeURIComponent(user.username)}`,
    revision: state.revision,
    reload: load,
  });
}

// API tokens

async function loadTokens() {
  const { tokens } = await call("GET", "/api/admin/tokens");
  document.getElementById("token-rows").replaceChildren(
    ...tokens.map((token) => {
      const row = document.createElement("tr");
      row.append(
        cell(token.name),
        cell(token.user ?? "(organisation)"),
        cell(fullTime(token.created_at)),
        cell(fullTime(token.last_used_at) || "never"),
        cell(fullTime(token.revoked_at) || "—"),
        token.revoked_at ? cell("") : actionCell([["Revoke", () => revoke(token)]]),
      );
      return row;
    }),
  );
}

async function revoke(token) {
  if (!window.confirm(`Revoke the token ${token.name}?`)) return;
  try {
    await call("DELETE", `/api/admin/tokens/${token.id}`);
  } catch (error) {
    say(error.message);
    return;
  }
  await announceChange(`The token ${token.name} is revoked.`, load);
}

const tokenForm = document.getElementById("token-form");
tokenForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  const username = document.getElementById("token-user").value;
  let made;
  try {
    made = await call("POST", `/api/admin/users/${encodeURIComponent(username)}/tokens`, {
      name: document.getElementById("token-name").value.trim(),
    });
  } catch (error) {
    showError(tokenForm, "token", error);
    return;
  }
  clearErrors(tokenForm);
  document.getElementById("token-value").textContent = made.token;
  document.getElementById("token-made").hidden = false;
  document.getElementById("token-name").value = "";
  await announceChange(
    `A token for ${username} is made: copy it now, it is not shown again.`,
    load,
  );
});

fillForm(null);
start(load);
