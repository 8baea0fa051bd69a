// The supervisors' page of canned responses (agent_ui/templates/canned_responses.html): the
// list, a form to add one or change one, and delete, through /api/canned-responses
// (docs/http_api.md). The workgroups to choose from are the organisation's queues
// (GET /api/queues, which shows a supervisor every workgroup).

import * as format from "./format.js";

const $ = (id) => document.getElementById(id);

async function call(method, url, body = undefined) {
  const options = { method, headers: { Accept: "application/json" } };
  if (body !== undefined) {
    options.headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(body);
  }
  const answer = await fetch(url, options);
  if (answer.status === 204) return null;
  const json = await answer.json().catch(() => null);
  if (!answer.ok) throw new Error(json?.detail ?? `the server answered ${answer.status}`);
  return json;
}

function showError(text) {
  $("canned-error").textContent = text;
  $("canned-error").hidden = !text;
}

function say(text) {
  $("canned-done").textContent = text;
}

async function readWorkgroups() {
  try {
    const { queues } = await call("GET", "/api/queues");
    const names = queues.filter((q) => q.kind === "workgroup").map((q) => q.name);
    $("canned-workgroup").append(...names.map((name) => new Option(name, name)));
  } catch (error) {
    showError(`Could not read the workgroups: ${error.message}`);
  }
}

async function readList() {
  const { canned_responses: responses } = await call("GET", "/api/canned-responses");
  $("canned-rows").replaceChildren(...responses.map(row));
  $("canned-none").hidden = responses.length > 0;
}

function row(response) {
  const tr = document.createElement("tr");
  tr.dataset.cannedId = String(response.id);
  const cells = [
    response.title,
    response.workgroup ?? "Everyone",
    response.body,
    `${format.fullTime(response.updated_at)} by ${response.updated_by}`,
  ].map((text) => Object.assign(document.createElement("td"), { textContent: text }));
  cells[2].className = "canned-body-cell";
  const actions = document.createElement("td");
  const edit = Object.assign(document.createElement("button"), {
    type: "button",
    className: "quiet",
    textContent: "Change",
  });
  edit.setAttribute("aria-label", `Change ${response.title}`);
  edit.addEventListener("click", () => beginChange(response));
  const remove = Object.assign(document.createElement("button"), {
    type: "button",
    className: "quiet",
    textContent: "Delete",
  });
  remove.setAttribute("aria-label", `Delete ${response.title}`);
  remove.addEventListener("click", () => deleteResponse(response));
  actions.append(edit, remove);
  tr.append(...cells, actions);
  return tr;
}

function beginChange(response) {
  $("canned-id").value = String(response.id);
  $("canned-title").value = response.title;
  $("canned-workgroup").value = response.workgroup ?? "";
  $("canned-body").value = response.body;
  $("canned-form-title").textContent = `Change “${response.title}”`;
  $("canned-save").textContent = "Save";
  $("canned-cancel").hidden = false;
  showError("");
  $("canned-title").focus();
}

function endChange() {
  $("canned-form").reset();
  $("canned-id").value = "";
  $("canned-form-title").textContent = "Add a canned response";
  $("canned-save").textContent = "Add";
  $("canned-cancel").hidden = true;
}

async function save(event) {
  event.preventDefault();
  const id = $("canned-id").value;
  const body = {
    title: $("canned-title").value,
    body: $("canned-body").value,
    workgroup: $("canned-workgroup").value || null,
  };
  showError("");
  $("canned-save").disabled = true;
  try {
    const saved = id
      ? await call("PUT", `/api/canned-responses/${id}`, body)
      : await call("POST", "/api/canned-responses", body);
    say(`Saved “${saved.title}”.`);
    endChange();
    await readList();
    $("canned-title").focus();
  } catch (error) {
    showError(`Not saved: ${error.message}`);
  } finally {
    $("canned-save").disabled = false;
  }
}

async function deleteResponse(response) {
  if (!window.confirm(`Delete the canned response “${response.title}”?`)) return;
  showError("");
  try {
    await call("DELETE", `/api/canned-responses/${response.id}`);
    say(`Deleted “${response.title}”.`);
    if ($("canned-id").value === String(response.id)) endChange();
    await readList();
  } catch (error) {
    showError(`Not deleted: ${error.message}`);
  }
}

$("canned-form").addEventListener("submit", save);
$("canned-cancel").addEventListener("click", () => {
  endChange();
  $("canned-title").focus();
});
await readWorkgroups();
readList().catch((error) => showError(`Could not read the canned responses: ${error.message}`));
