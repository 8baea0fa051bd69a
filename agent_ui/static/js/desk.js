// The agent's desk: what the agent page shows, kept from the protocol's frames (no DOM here).
//
// Feed it `applySnapshot`, `applyEvent`, `applyQueueFigures` and the results of commands
// (`mergeInteraction`, `addMessage`); read `agent`, `offers`, `conversations` and `queues`.
// Every change calls the listeners given to `subscribe`. Feeding the same event or message twice
// changes nothing (events are keyed by their ids), so a replay after a reconnect is harmless.

const STATUS_RANK = { queued: 0, sent: 1, delivered: 2, failed: 2 };

/** Whether a delivery status may follow `current` (statuses only move forward). */
export function statusMovesForward(current, next) {
  if (next === null || next === undefined) return false;
  if (current === null || current === undefined) return true;
  return STATUS_RANK[next] > STATUS_RANK[current];
}

/** Whether the agent holds this (disconnected) interaction for wrap-up: `wrap_up_until` says. */
export function inWrapUp(interaction) {
  return interaction.state === "disconnected" && Boolean(interaction.wrap_up_until);
}

export class Conversation {
  constructor(interaction) {
    this.id = interaction.id;
    this.interaction = interaction;
    this.messages = new Map(); // id -> Message, shown in id order
    this.loaded = false; // the transcript was read with get_interaction (or came in a snapshot)
    this.wrapUp = inWrapUp(interaction); // the agent's slot is held for wrap-up
    this.unread = 0;
  }

  get state() {
    return this.interaction.state;
  }

  /** Messages, oldest first. */
  ordered() {
    return [...this.messages.values()].sort((a, b) => a.id - b.id);
  }
}

export class Desk {
  constructor(userId) {
    this.userId = userId;
    this.agent = null; // AgentState: state, reason, since, capacity, active
    this.offers = new Map(); // interaction id -> Offer (+ receivedAt)
    this.conversations = new Map(); // interaction id -> Conversation
    this.queues = new Map(); // "kind:id" -> QueueFigures
    this._statuses = new Map(); // message id -> {status, reason}, for a message not seen yet
    this._listeners = new Set();
  }

  subscribe(listener) {
    this._listeners.add(listener);
    return () => this._listeners.delete(listener);
  }

  _changed(what) {
    for (const listener of this._listeners) listener(what);
  }

  /** A snapshot replaces everything but the closed conversations still on screen. */
  applySnapshot(snapshot) {
    this.agent = snapshot.agent;
    this.offers = new Map(
      snapshot.offers.map((offer) => [offer.interaction_id, { ...offer, receivedAt: Date.now() }]),
    );
    const kept = new Map();
    for (const [id, conversation] of this.conversations) {
      if (conversation.state === "disconnected" || !this.isMine(conversation.interaction)) {
        conversation.wrapUp = false; // unless the snapshot still lists it (below)
        kept.set(id, conversation); // already over: the agent closes its tab
      }
    }
    for (const item of snapshot.interactions) {
      const { messages, ...interaction } = item;
      const conversation = this.conversations.get(item.id) ?? new Conversation(interaction);
      conversation.interaction = interaction;
      conversation.messages = new Map(messages.map((m) => [m.id, m]));
      conversation.loaded = true;
      conversation.wrapUp = inWrapUp(interaction);
      kept.set(item.id, conversation);
    }
    for (const [id, conversation] of this.conversations) {
      if (!kept.has(id) && conversation.state !== "disconnected") {
        // It was open and is no longer this agent's: it ended while the page was away.
        conversation.interaction = { ...conversation.interaction, stale: true };
        kept.set(id, conversation);
      }
    }
    this.conversations = kept;
    this.queues = new Map(snapshot.queues.map((q) => [`${q.kind}:${q.id}`, q]));
    this._changed({ kind: "snapshot" });
  }

  applyQueueFigures(queues) {
    for (const figures of queues) this.queues.set(`${figures.kind}:${figures.id}`, figures);
    this._changed({ kind: "queues" });
  }

  /**
   * Apply one event. Returns what the page may want to react to:
   * {kind: "offer", offer} for a new offer, {kind: "opened", id} when a conversation appeared
   * that needs its transcript read (`get_interaction`), {kind: "message", id, inbound} for a
   * new text, else {kind}.
   */
  applyEvent(event) {
    switch (event.kind) {
      case "offer": {
        const offer = {
          interaction_id: event.interaction_id,
          expires_at: event.expires_at,
          interaction: event.interaction,
          receivedAt: Date.now(),
        };
        const isNew = !this.offers.has(event.interaction_id);
        this.offers.set(event.interaction_id, offer);
        this._changed({ kind: "offers" });
        return isNew ? { kind: "offer", offer } : { kind: "offers" };
      }
      case "offer_ended":
        this.offers.delete(event.interaction_id);
        this._changed({ kind: "offers" });
        return { kind: "offers" };
      case "interaction":
        return this._interactionChanged(event.interaction);
      case "message":
        return this.addMessage(event.message);
      case "message_status":
        this.setStatus(event.message_id, event.interaction_id, event.status, event.reason);
        return { kind: "status" };
      case "agent_state": {
        const { kind, ...state } = event;
        this.agent = state;
        this._changed({ kind: "agent" });
        return { kind: "agent" };
      }
      default:
        return { kind: "unknown" };
    }
  }

  /** How many of the agent's slots its conversations hold (open, or in wrap-up). */
  held() {
    let count = 0;
    for (const conversation of this.conversations.values()) {
      const interaction = conversation.interaction;
      if (!this.isMine(interaction) || interaction.stale) continue;
      if (interaction.state === "connected" || interaction.state === "idle" || conversation.wrapUp) {
        count += 1;
      }
    }
    return count;
  }

  isMine(interaction) {
    return interaction.agent_id === this.userId;
  }

  _interactionChanged(interaction) {
    let conversation = this.conversations.get(interaction.id);
    let opened = false;
    if (conversation === undefined) {
      if (!this.isMine(interaction)) return { kind: "ignored" }; // never ours on this page
      conversation = new Conversation(interaction);
      this.conversations.set(interaction.id, conversation);
      opened = true;
    }
    // a wrap-up's event comes when it begins (wrap_up_until set) and when it ends (null again:
    // the agent's end_wrap_up, or the workgroup's wrap-up timeout)
    conversation.wrapUp = this.isMine(interaction) && inWrapUp(interaction);
    conversation.interaction = interaction;
    this._changed({ kind: "conversation", id: interaction.id });
    return opened ? { kind: "opened", id: interaction.id } : { kind: "conversation" };
  }

  /** An interaction as a command answered it (accept, get_interaction), with its messages. */
  mergeInteraction(interaction, messages = null, { fresh = false } = {}) {
    let conversation = this.conversations.get(interaction.id);
    if (conversation === undefined) {
      conversation = new Conversation(interaction);
      this.conversations.set(interaction.id, conversation);
    } else if (fresh || conversation.interaction.stale) {
      conversation.interaction = interaction;
      conversation.wrapUp = inWrapUp(interaction);
    }
    if (messages !== null) {
      for (const message of messages) this._putMessage(conversation, message);
      conversation.loaded = true;
    }
    this._changed({ kind: "conversation", id: interaction.id });
    return conversation;
  }

  /** A message from an event or a command's answer. */
  addMessage(message) {
    const conversation = this.conversations.get(message.interaction_id);
    if (conversation === undefined) {
      this._changed({ kind: "orphan" });
      return { kind: "orphan", id: message.interaction_id };
    }
    const isNew = !conversation.messages.has(message.id);
    this._putMessage(conversation, message);
    this._changed({ kind: "conversation", id: conversation.id });
    return { kind: "message", id: conversation.id, isNew, inbound: message.direction === "inbound" };
  }

  _putMessage(conversation, message) {
    const known = conversation.messages.get(message.id);
    let merged = { ...message };
    if (known !== undefined && !statusMovesForward(known.status, message.status)) {
      merged = { ...merged, status: known.status, status_reason: known.status_reason };
    }
    const early = this._statuses.get(message.id);
    if (early !== undefined) {
      this._statuses.delete(message.id);
      if (statusMovesForward(merged.status, early.status)) {
        merged = { ...merged, status: early.status, status_reason: early.reason };
      }
    }
    conversation.messages.set(message.id, merged);
  }

  setStatus(messageId, interactionId, status, reason) {
    const message = this.conversations.get(interactionId)?.messages.get(messageId);
    if (message === undefined) {
      const early = this._statuses.get(messageId);
      if (early === undefined || statusMovesForward(early.status, status)) {
        this._statuses.set(messageId, { status, reason });
      }
      return;
    }
    if (statusMovesForward(message.status, status)) {
      message.status = status;
      message.status_reason = reason;
      this._changed({ kind: "conversation", id: interactionId });
    }
  }

  setWrapUp(id, held) {
    const conversation = this.conversations.get(id);
    if (conversation === undefined) return;
    conversation.wrapUp = held;
    this._changed({ kind: "conversation", id });
  }

  markRead(id) {
    const conversation = this.conversations.get(id);
    if (conversation !== undefined && conversation.unread !== 0) {
      conversation.unread = 0;
      this._changed({ kind: "conversation", id });
    }
  }

  markUnread(id) {
    const conversation = this.conversations.get(id);
    if (conversation !== undefined) {
      conversation.unread += 1;
      this._changed({ kind: "conversation", id });
    }
  }

  /** Take a finished conversation off the desk (the agent closed its tab). */
  forget(id) {
    this.conversations.delete(id);
    this._changed({ kind: "conversations" });
  }
}
