// The supervisor dashboard (agent_ui/README.md, "The supervisor dashboard"): the agent protocol
// over the agent WebSocket; the server pushes the picture (`supervisor_snapshot`, then
// `supervisor_update` at most once a second while something changes), the page never polls.
// Rows are kept by key and updated in place, so a focused button keeps its focus.

import { AgentConnection } from "./connection.js";
import { clockTime, duration, phone } from "./format.js";
import { drawChart } from "./supervisor_chart.js";
import { STATE_LABELS, SupervisorBoard } from "./supervisor_board.js";

const $ = (id) => document.getElementById(id);
const board = new SupervisorBoard();
const STATUS_TEXT = {
  connecting: "Connecting…",
  connected: "Live",
  reconnecting: "Connection lost: reconnecting…",
  "signed-out": "Your session has ended: sign in again.",
  failed: "This page is out of date: reload it.",
};

const connection = new AgentConnection({
  supervise: true,
  onStatus: (status, detail) => {
    const line = $("sup-status");
    line.dataset.status = status;
    line.textContent = STATUS_TEXT[status] ?? status;
    if (detail && status !== "connected") line.title = detail;
  },
  onSupervision: (frame) => {
    if (board.take(frame)) render();
  },
});

// -- rendering ---------------------------------------------------------------------------------

/** Make `tbody` hold one row per item, in order, reusing rows by `key(item)`. */
function syncRows(tbody, items, key, build, update) {
  const existing = new Map([...tbody.rows].map((row) => [row.dataset.key, row]));
  let previous = null;
  for (const item of items) {
    const k = String(key(item));
    let row = existing.get(k);
    existing.delete(k);
    if (!row) {
      row = build(item);
      row.dataset.key = k;
    }
    update(row, item);
    const wanted = previous ? previous.nextSibling : tbody.firstChild;
    if (row !== wanted) tbody.insertBefore(row, wanted);
    previous = row;
  }
  for (const row of existing.values()) row.remove();
}

function cell(row, figure) {
  return row.querySelector(`[data-figure="${figure}"]`);
}

function setText(node, text) {
  if (node.textContent !== text) node.textContent = text;
}

function percent(share) {
  return share === null || share === undefined ? "–" : `${Math.round(share * 100)} %`;
}

function renderQueues() {
  const template = $("queue-row");
  syncRows(
    $("queue-rows"),
    board.queues,
    (q) => q.id,
    () => template.content.firstElementChild.cloneNode(true),
    (row, q) => {
      row.dataset.queue = q.name;
      row.dataset.workgroupId = String(q.id);
      setText(cell(row, "name"), q.name);
      setText(cell(row, "waiting"), String(q.waiting));
      cell(row, "waiting").dataset.value = String(q.waiting);
      setText(cell(row, "longest_wait"), q.waiting ? duration(board.longestWait(q)) : "–");
      setText(cell(row, "average_wait"), q.average_wait_s === null ? "–" : duration(q.average_wait_s));
      setText(cell(row, "answered"), String(q.answered));
      cell(row, "answered").dataset.value = String(q.answered);
      setText(cell(row, "abandoned"), String(q.abandoned));
      cell(row, "abandoned").dataset.value = String(q.abandoned);
      const level = cell(row, "service_level");
      setText(level, percent(q.service_level));
      level.title = `Answered within ${q.service_level_s} s: ${q.answered_within} of ${q.answered + q.abandoned}`;
      level.dataset.value = q.service_level === null ? "" : String(q.service_level);
      const a = q.agents;
      setText(
        cell(row, "agents"),
        `${a.available} available · ${a.busy} busy · ${a.away} away · ${a.offline} offline`,
      );
      cell(row, "agents").dataset.available = String(a.available);
    },
  );
  $("queue-none").hidden = board.queues.length > 0;
}

function fillSelect(select, choices, keepFirst = true) {
  const value = select.value;
  const first = keepFirst ? [...select.options].slice(0, 1) : [];
  const wanted = choices.map((c) => `${c.value}\u0000${c.label}`).join("\n");
  if (select.dataset.choices !== wanted) {
    select.replaceChildren(
      ...first,
      ...choices.map((c) => {
        const option = document.createElement("option");
        option.value = c.value;
        option.textContent = c.label;
        return option;
      }),
    );
    select.dataset.choices = wanted;
  }
  if ([...select.options].some((o) => o.value === value)) select.value = value;
}

function filters() {
  return {
    queue: $("filter-queue").value,
    state: $("filter-state").value,
    agent: $("filter-agent").value,
    phone: $("filter-phone").value,
  };
}

function actionButton(label, action, text) {
  const button = document.createElement("button");
  button.type = "button";
  button.className = "quiet";
  button.dataset.action = action;
  button.textContent = text;
  button.setAttribute("aria-label", label);
  return button;
}

/** A row with a cell per figure (the first a row header) and a cell of action buttons. */
function newRow(figures, buttons) {
  const row = document.createElement("tr");
  figures.forEach((figure, index) => {
    const td = document.createElement(index === 0 ? "th" : "td");
    if (index === 0) td.scope = "row";
    td.dataset.figure = figure;
    row.append(td);
  });
  const actions = document.createElement("td");
  actions.className = "sup-actions";
  actions.append(...buttons);
  row.append(actions);
  return row;
}

function renderInteractions() {
  fillSelect($("filter-queue"), board.queueChoices());
  fillSelect(
    $("filter-agent"),
    board.agents.map((a) => ({ value: String(a.id), label: a.username })),
  );
  const shown = board.filtered(filters());
  syncRows(
    $("interaction-rows"),
    shown,
    (item) => item.interaction.id,
    (item) => {
      const id = item.interaction.id;
      return newRow(["id", "customer", "queue", "state", "agent", "since"], [
        actionButton(`Transcript of interaction ${id}`, "transcript", "Transcript"),
        actionButton(`Transfer interaction ${id}`, "transfer", "Transfer…"),
        actionButton(`Disconnect interaction ${id}`, "disconnect", "Disconnect"),
      ]);
    },
    (row, item) => {
      const i = item.interaction;
      row.dataset.interactionId = String(i.id);
      row.dataset.state = i.state;
      setText(cell(row, "id"), String(i.id));
      setText(cell(row, "customer"), phone(i.remote_number));
      setText(cell(row, "queue"), i.queue.name);
      setText(cell(row, "state"), STATE_LABELS[i.state] ?? i.state);
      setText(cell(row, "agent"), board.agentName(board.agentOf(item)));
      setText(cell(row, "since"), clockTime(i.enqueued_at));
      const live = i.state !== "disconnected";
      for (const action of ["transfer", "disconnect"]) {
        row.querySelector(`[data-action="${action}"]`).disabled = !live;
      }
    },
  );
  $("interaction-none").hidden = shown.length > 0;
  $("interaction-none").textContent = board.interactions.length
    ? "No interaction matches the filters."
    : "No live interactions.";
  const more = board.interactionsTotal - board.interactions.length;
  $("interaction-more").hidden = more <= 0;
  setText(
    $("interaction-more"),
    more > 0 ? `The ${board.interactions.length} oldest of ${board.interactionsTotal} are listed.` : "",
  );
}

function renderAgents() {
  syncRows(
    $("agent-rows"),
    board.agents,
    (a) => a.id,
    (a) =>
      newRow(["name", "state", "load", "since"], [
        actionButton(`Make ${a.username} available`, "available", "Make available"),
        actionButton(`Set ${a.username} away`, "away", "Set away…"),
      ]),
    (row, a) => {
      row.dataset.agent = a.username;
      row.dataset.agentId = String(a.id);
      row.dataset.state = a.state;
      setText(cell(row, "name"), a.username);
      setText(cell(row, "state"), a.reason ? `${a.state} (${a.reason})` : a.state);
      setText(cell(row, "load"), `${a.active} of ${a.capacity}`);
      setText(cell(row, "since"), a.since ? clockTime(a.since) : "–");
    },
  );
}

function renderChart() {
  const select = $("chart-queue");
  fillSelect(
    select,
    board.queues.map((q) => ({ value: String(q.id), label: q.name })),
    false,
  );
  const id = Number(select.value);
  drawChart($("queue-chart"), board.samples.get(id) ?? [], {
    endMs: board.serverNow(),
    hours: board.chartHours,
  });
}

function render() {
  renderQueues();
  renderInteractions();
  renderAgents();
  renderChart();
  setText($("sup-updated"), board.at === null ? "" : `Updated ${clockTime(new Date(board.at).toISOString())}.`);
}

// -- actions -----------------------------------------------------------------------------------

function report(error, done = "") {
  const line = $("action-error");
  line.hidden = !error;
  line.textContent = error ? (error.detail ?? String(error)) : "";
  setText($("action-done"), done);
}

async function run(type, fields, done) {
  try {
    await connection.command(type, fields);
    report(null, done);
  } catch (error) {
    report(error);
  }
}

async function showTranscript(interactionId) {
  try {
    const found = await connection.command("get_interaction", { interaction_id: interactionId });
    const i = found.interaction;
    $("transcript").hidden = false;
    $("transcript").dataset.interactionId = String(i.id);
    setText($("transcript-title"), `Transcript of interaction ${i.id}`);
    setText(
      $("transcript-about"),
      `${phone(i.remote_number)} · ${i.queue.name} · ${STATE_LABELS[i.state] ?? i.state}`,
    );
    $("transcript-messages").replaceChildren(
      ...found.messages.map((m) => {
        const li = document.createElement("li");
        li.className = `sup-message sup-${m.direction}`;
        const who = m.direction === "inbound" ? "Customer" : board.agentName(m.author_id) || "Parley";
        const head = document.createElement("span");
        head.className = "muted";
        head.textContent = `${who}, ${clockTime(m.created_at)}: `;
        li.append(head, document.createTextNode(m.body));
        return li;
      }),
    );
    $("transcript-title").focus();
    report(null);
  } catch (error) {
    report(error);
  }
}

let transferring = null;

function openTransfer(interactionId) {
  transferring = interactionId;
  setText($("transfer-which"), String(interactionId));
  fillSelect(
    $("transfer-target"),
    [
      ...board.queues.map((q) => ({ value: `workgroup:${q.name}`, label: `Workgroup ${q.name}` })),
      ...board.agents.map((a) => ({ value: `user:${a.username}`, label: `Agent ${a.username}` })),
    ],
    false,
  );
  $("transfer-dialog").showModal();
}

let settingAway = null;

function openAway(agent) {
  settingAway = agent;
  setText($("away-who"), agent.username);
  $("away-dialog").showModal();
  $("away-reason").select();
}

function wire() {
  $("interaction-rows").addEventListener("click", (event) => {
    const button = event.target.closest("button[data-action]");
    if (!button) return;
    const id = Number(button.closest("tr").dataset.interactionId);
    if (button.dataset.action === "transcript") showTranscript(id);
    if (button.dataset.action === "transfer") openTransfer(id);
    if (button.dataset.action === "disconnect" && window.confirm(`Disconnect interaction ${id}?`)) {
      run("supervisor_disconnect", { interaction_id: id }, `Interaction ${id} disconnected.`);
    }
  });
  $("agent-rows").addEventListener("click", (event) => {
    const button = event.target.closest("button[data-action]");
    if (!button) return;
    const id = Number(button.closest("tr").dataset.agentId);
    const agent = board.agents.find((a) => a.id === id);
    if (!agent) return;
    if (button.dataset.action === "available") {
      run("set_agent_state", { agent_id: id, state: "available" }, `${agent.username} is available.`);
    } else {
      openAway(agent);
    }
  });
  $("transfer-form").addEventListener("submit", () => {
    const [kind, ...rest] = $("transfer-target").value.split(":");
    const id = transferring;
    run(
      "supervisor_transfer",
      { interaction_id: id, to: { [kind]: rest.join(":") } },
      `Interaction ${id} transferred to ${rest.join(":")}.`,
    );
  });
  $("transfer-cancel").addEventListener("click", () => $("transfer-dialog").close());
  $("away-form").addEventListener("submit", () => {
    const agent = settingAway;
    const reason = $("away-reason").value.trim() || "Set by a supervisor";
    run("set_agent_state", { agent_id: agent.id, state: "away", reason }, `${agent.username} is away.`);
  });
  $("away-cancel").addEventListener("click", () => $("away-dialog").close());
  $("transcript-close").addEventListener("click", () => {
    $("transcript").hidden = true;
  });
  $("interaction-filters").addEventListener("input", renderInteractions);
  $("interaction-filters").addEventListener("submit", (event) => event.preventDefault());
  $("chart-queue").addEventListener("change", renderChart);
  setInterval(() => {
    if (board.at === null) return;
    for (const row of $("queue-rows").rows) {
      const q = board.queues.find((x) => String(x.id) === row.dataset.workgroupId);
      if (q) setText(cell(row, "longest_wait"), q.waiting ? duration(board.longestWait(q)) : "–");
    }
  }, 1000);
}

wire();
connection.start();
