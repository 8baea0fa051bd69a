// /admin/numbers: numbers (add, assign to a workgroup or a user, remove) and broker accounts
// (add, change, remove; credentials are never shown back, only their last characters),
// through /api/admin/numbers and /api/admin/accounts.

import {
  actionCell,
  announceChange,
  call,
  cell,
  clearErrors,
  parseLines,
  removeAfterAsking,
  sendForm,
  start,
} from "./admin_api.js";
import { phone } from "./format.js";

const numberForm = document.getElementById("number-form");
const accountForm = document.getElementById("account-form");
const byId = (id) => document.getElementById(id);
const state = { revision: null, editingNumber: null, editingAccount: null };

function assignmentOf(number) {
  if (number.workgroup) return `workgroup:${number.workgroup}`;
  if (number.user) return `user:${number.user}`;
  return "";
}

function assignmentText(number) {
  if (number.workgroup) return `workgroup ${number.workgroup}`;
  if (number.user) return `user ${number.user}`;
  return "—";
}

function fillAssignments(workgroups, users) {
  const select = byId("number-assignment");
  const chosen = select.value;
  const groups = [
    ["Workgroups", workgroups.map((name) => [`workgroup:${name}`, name])],
    ["Users (their direct number)", users.map((name) => [`user:${name}`, name])],
  ];
  select.replaceChildren(
    ...groups.map(([label, options]) => {
      const group = document.createElement("optgroup");
      group.label = label;
      group.append(...options.map(([value, text]) => new Option(text, value)));
      return group;
    }),
  );
  if (chosen) select.value = chosen;
}

function fillNumberForm(number) {
  state.editingNumber = number ?? null;
  clearErrors(numberForm);
  byId("number-number").value = number?.number ?? "";
  byId("number-number").readOnly = Boolean(number);
  byId("number-account").disabled = Boolean(number);
  if (number) byId("number-account").value = number.account;
  byId("number-name").value = number?.friendly_name ?? "";
  if (number) byId("number-assignment").value = assignmentOf(number);
  byId("number-form-title").textContent = number ? `Change ${phone(number.number)}` : "Add a number";
  byId("number-save").textContent = number ? "Save the changes" : "Add the number";
  byId("number-cancel").hidden = !number;
  if (number) byId("number-assignment").focus();
}

function fillAccountForm(account) {
  state.editingAccount = account ?? null;
  clearErrors(accountForm);
  byId("account-id").value = account?.public_id ?? "";
  byId("account-id").readOnly = Boolean(account);
  byId("account-broker").value = account?.broker ?? "sandbox";
  byId("account-name").value = account?.name ?? "";
  byId("account-credentials").value = "";
  byId("account-form-title").textContent = account
    ? `Change ${account.public_id}`
    : "Add a broker account";
  byId("account-save").textContent = account ? "Save the changes" : "Add the account";
  byId("account-cancel").hidden = !account;
  if (account) byId("account-name").focus();
}

async function load() {
  const [numbers, accounts, workgroups, users] = await Promise.all([
    call("GET", "/api/admin/numbers"),
    call("GET", "/api/admin/accounts"),
    call("GET", "/api/admin/workgroups"),
    call("GET", "/api/admin/users"),
  ]);
  state.revision = numbers.revision;
  fillAssignments(
    workgroups.workgroups.map((workgroup) => workgroup.name),
    users.users.map((user) => user.username),
  );
  const accountSelect = byId("number-account");
  const chosen = accountSelect.value;
  accountSelect.replaceChildren(
    ...accounts.accounts.map((account) => new Option(account.public_id, account.public_id)),
  );
  if (chosen) accountSelect.value = chosen;
  byId("number-rows").replaceChildren(
    ...numbers.numbers.map((number) => {
      const row = document.createElement("tr");
      row.dataset.number = number.number;
      row.append(
        cell(phone(number.number)),
        cell(number.friendly_name),
        cell(number.account),
        cell(assignmentText(number)),
        actionCell([
          ["Change", () => fillNumberForm(number)],
          ["Remove", () => removeNumber(number)],
        ]),
      );
      return row;
    }),
  );
  byId("account-rows").replaceChildren(
    ...accounts.accounts.map((account) => {
      const row = document.createElement("tr");
      row.dataset.account = account.public_id;
      const credentials = Object.entries(account.credentials)
        .map(([name, shown]) => `${name} ${shown}`)
        .join(", ");
      row.append(
        cell(account.public_id),
        cell(account.broker),
        cell(account.name),
        cell(credentials || "—"),
        cell(account.webhook_path),
        cell(account.numbers.map(phone).join(", ") || "—"),
        actionCell([
          ["Change", () => fillAccountForm(account)],
          ["Remove", () => removeAccount(account)],
        ]),
      );
      return row;
    }),
  );
}

numberForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  const [kind, target] = byId("number-assignment").value.split(/:(.*)/s);
  const body = {
    friendly_name: byId("number-name").value.trim() || null,
    workgroup: kind === "workgroup" ? target : null,
    user: kind === "user" ? target : null,
    revision: state.revision,
  };
  const editing = state.editingNumber;
  const sent = await sendForm({
    form: numberForm,
    prefix: "number",
    reload: load,
    send: () => {
      if (editing) {
        const path = `/api/admin/numbers/${encodeURIComponent(editing.account)}/${encodeURIComponent(editing.number)}`;
        return call("PATCH", path, body);
      }
      return call("POST", "/api/admin/numbers", {
        number: byId("number-number").value.trim(),
        account: byId("number-account").value,
        ...body,
      });
    },
  });
  if (!sent) return;
  const what = editing ? phone(editing.number) : byId("number-number").value.trim();
  fillNumberForm(null);
  await announceChange(editing ? `${what} changed.` : `${what} added.`, load);
});

byId("number-cancel").addEventListener("click", () => fillNumberForm(null));

function removeNumber(number) {
  return removeAfterAsking({
    what: phone(number.number),
    path: `/api/admin/numbers/${encodeURIComponent(number.account)}/${encodeURIComponent(number.number)}`,
    revision: state.revision,
    reload: load,
  });
}

accountForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  const credentials = parseLines(byId("account-credentials").value);
  const editing = state.editingAccount;
  const body = {
    broker: byId("account-broker").value,
    name: byId("account-name").value.trim() || null,
    revision: state.revision,
  };
  const sent = await sendForm({
    form: accountForm,
    prefix: "account",
    reload: load,
    send: () => {
      if (editing) {
        const changes = Object.keys(credentials).length ? { credentials } : {};
        return call("PATCH", `/api/admin/accounts/${encodeURIComponent(editing.public_id)}`, {
          ...body,
          ...changes,
        });
      }
      return call("POST", "/api/admin/accounts", {
        public_id: byId("account-id").value.trim(),
        credentials,
        ...body,
      });
    },
  });
  if (!sent) return;
  const what = editing ? editing.public_id : byId("account-id").value.trim();
  fillAccountForm(null);
  await announceChange(editing ? `${what} changed.` : `${what} added.`, load);
});

byId("account-cancel").addEventListener("click", () => fillAccountForm(null));

function removeAccount(account) {
  return removeAfterAsking({
    what: `the account ${account.public_id}`,
    path: `/api/admin/accounts/${encodeURIComponent(account.public_id)}`,
    revision: state.revision,
    reload: load,
  });
}

start(load);
