// The supervisor dashboard's model (no DOM): the organisation's picture from the server's
// `supervisor_snapshot` and `supervisor_update` frames (docs/protocol.md, "Supervisors"), the
// samples of the chart, and the interaction filters.

export const STATE_LABELS = {
  queued: "Waiting",
  offered: "Offered",
  connected: "Connected",
  idle: "Idle",
  disconnected: "Wrap-up",
};

export class SupervisorBoard {
  constructor() {
    this.at = null; // the server's time of the picture (ms)
    this.receivedAt = 0; // this page's time when it came (ms)
    this.queues = [];
    this.agents = [];
    this.interactions = [];
    this.interactionsTotal = 0;
    this.samples = new Map(); // workgroup id -> [sample], oldest first
    this.chartHours = 4;
  }

  /** Take a `supervisor_snapshot` (replaces everything) or `supervisor_update`. */
  take(frame, receivedAt = Date.now()) {
    const at = Date.parse(frame.at);
    if (frame.type === "supervisor_snapshot") {
      this.samples = new Map();
      this.chartHours = frame.chart_hours ?? this.chartHours;
    } else if (this.at !== null && at < this.at) {
      return false; // an older picture than the one shown
    }
    this.at = at;
    this.receivedAt = receivedAt;
    this.queues = frame.queues;
    this.agents = frame.agents;
    this.interactions = frame.interactions;
    this.interactionsTotal = frame.interactions_total;
    for (const sample of frame.samples) this._addSample(sample);
    this._dropOldSamples();
    return true;
  }

  _addSample(sample) {
    const list = this.samples.get(sample.workgroup_id) ?? [];
    if (list.some((held) => held.at === sample.at)) return;
    list.push(sample);
    list.sort((a, b) => Date.parse(a.at) - Date.parse(b.at));
    this.samples.set(sample.workgroup_id, list);
  }

  _dropOldSamples() {
    const since = this.at - this.chartHours * 3600_000;
    for (const [id, list] of this.samples) {
      this.samples.set(
        id,
        list.filter((s) => Date.parse(s.at) >= since),
      );
    }
  }

  /** The server's now, as well as this page can tell (the picture's time plus what passed). */
  serverNow(now = Date.now()) {
    return this.at === null ? now : this.at + (now - this.receivedAt);
  }

  /** Seconds the longest-waiting interaction of `queue` has waited, now. */
  longestWait(queue, now = Date.now()) {
    if (!queue.oldest_enqueued_at) return 0;
    return Math.max(0, (this.serverNow(now) - Date.parse(queue.oldest_enqueued_at)) / 1000);
  }

  agentName(userId) {
    if (userId === null || userId === undefined) return "";
    return this.agents.find((a) => a.id === userId)?.username ?? `#${userId}`;
  }

  /** Who an interaction is with (offered to, connected to, or in wrap-up with). */
  agentOf(item) {
    return item.interaction.agent_id ?? item.offered_to ?? item.wrap_up_by ?? null;
  }

  /** The interactions that pass the filters {queue: "kind:id", state, agent: id, phone}. */
  filtered({ queue = "", state = "", agent = "", phone = "" } = {}) {
    const digits = phone.replace(/\D/g, "");
    return this.interactions.filter((item) => {
      const i = item.interaction;
      if (queue && `${i.queue.kind}:${i.queue.id}` !== queue) return false;
      if (state && i.state !== state) return false;
      if (agent && String(this.agentOf(item)) !== agent) return false;
      if (digits && !i.remote_number.replace(/\D/g, "").includes(digits)) return false;
      return true;
    });
  }

  /** Every queue an interaction is in, for the queue filter: [{value, label}]. */
  queueChoices() {
    const seen = new Map();
    for (const q of this.queues) seen.set(`workgroup:${q.id}`, q.name);
    for (const item of this.interactions) {
      const q = item.interaction.queue;
      const key = `${q.kind}:${q.id}`;
      if (!seen.has(key)) seen.set(key, q.kind === "user" ? `${q.name} (direct)` : q.name);
    }
    return [...seen].map(([value, label]) => ({ value, label }));
  }
}
