// A conversation's "Earlier conversations with this customer": read when the agent opens the
// section (GET /api/interactions/{id}/history), each earlier one with its date, queue, agent
// and how it closed, and its transcript on demand (GET .../history/{earlier_id}).
//
// `new HistoryView({root, interactionId})`: `root` is the panel's <details class="history">.

import * as format from "./format.js";

const CLOSED = {
  agent: "closed by the agent",
  idle: "closed: nobody wrote",
  max_wait: "closed: waited too long",
};

async function getJson(url) {
  const answer = await fetch(url, { headers: { Accept: "application/json" } });
  const json = await answer.json().catch(() => null);
  if (!answer.ok) throw new Error(json?.detail ?? `the server answered ${answer.status}`);
  return json;
}

export class HistoryView {
  constructor({ root, interactionId }) {
    this.root = root;
    this.id = interactionId;
    this.status = root.querySelector(".history-status");
    this.list = root.querySelector(".history-list");
    this.read = false;
    root.addEventListener("toggle", () => {
      if (root.open && !this.read) this.load();
    });
  }

  async load() {
    this.read = true;
    this.status.textContent = "Reading…";
    try {
      const history = await getJson(`/api/interactions/${this.id}/history`);
      this.list.replaceChildren(...history.interactions.map((entry) => this._entry(entry)));
      const count = history.interactions.length;
      this.status.textContent =
        count === 0
          ? "No earlier conversation with this customer."
          : `${count} earlier conversation${count === 1 ? "" : "s"}, newest first.`;
    } catch (error) {
      this.read = false; // try again at the next opening
      this.status.textContent = `Could not read the earlier conversations: ${error.message}`;
    }
  }

  _entry(entry) {
    const item = document.createElement("li");
    item.className = "history-entry";
    item.dataset.interactionId = String(entry.id);
    const summary = document.createElement("p");
    const when = document.createElement("time");
    when.dateTime = entry.created_at;
    when.textContent = format.fullTime(entry.created_at);
    const who = entry.agent ? entry.agent.display_name || entry.agent.username : "no agent";
    const how =
      entry.state === "disconnected" ? (CLOSED[entry.closed_reason] ?? "closed") : entry.state;
    const texts = entry.message_count === 1 ? "1 text" : `${entry.message_count} texts`;
    summary.append(
      when,
      ` · ${entry.queue.name || entry.queue.kind} · ${who} · ${how} · ${texts}`,
    );
    const button = document.createElement("button");
    button.type = "button";
    button.className = "quiet show-transcript";
    button.textContent = "Show the texts";
    button.setAttribute("aria-expanded", "false");
    const transcript = document.createElement("ol");
    transcript.className = "history-transcript";
    transcript.hidden = true;
    button.addEventListener("click", () => this._toggle(entry, button, transcript));
    item.append(summary, button, transcript);
    return item;
  }

  async _toggle(entry, button, transcript) {
    if (!transcript.hidden) {
      transcript.hidden = true;
      button.setAttribute("aria-expanded", "false");
      button.textContent = "Show the texts";
      return;
    }
    button.disabled = true;
    try {
      if (!transcript.childElementCount) {
        const found = await getJson(`/api/interactions/${this.id}/history/${entry.id}`);
        transcript.replaceChildren(
          ...found.messages.map((message) => {
            const line = document.createElement("li");
            line.className = `history-message ${message.direction}`;
            const who = message.direction === "inbound" ? "Customer" : "Us";
            const at = format.clockTime(message.created_at);
            line.textContent = `${who} (${at}): ${message.body}`;
            return line;
          }),
        );
      }
      transcript.hidden = false;
      button.setAttribute("aria-expanded", "true");
      button.textContent = "Hide the texts";
    } catch (error) {
      this.status.textContent = `Could not read those texts: ${error.message}`;
    } finally {
      button.disabled = false;
    }
  }
}
