// One conversation's panel on the agent page: its transcript with delivery statuses, the reply
// box (segment counter, files), and transfer, wrap-up and disconnect.
//
// `new ConversationView({conversation, page})` builds the panel from the page's
// <template id="conversation-template">; the page calls `update(conversation)` whenever the
// desk changed, `tick()` every second, and `remove()` when the tab closes. `page` gives
// `command(type, fields)`, `desk`, `userId`, `toast(text)`, `closeTab(id)`,
// `workgroupNames()` and `cannedResponses()`. The reply box has a canned-response picker
// (canned_picker.js); the panel ends with the customer's earlier conversations
// (history_view.js).

import { CannedPicker } from "./canned_picker.js";
import { CommandError } from "./connection.js";
import * as format from "./format.js";
import { HistoryView } from "./history_view.js";

const SEGMENTS_DELAY_MS = 250;
const MAX_FILES = 10;

const STATUS_TEXT = {
  queued: "◷ Queued",
  sent: "✓ Sent",
  delivered: "✓✓ Delivered",
  failed: "✗ Failed",
};

const STATE_TEXT = {
  queued: "Queued",
  offered: "Offered",
  connected: "Connected",
  idle: "Idle",
  disconnected: "Closed",
};

const CLOSED_TEXT = {
  agent: "Closed by the agent.",
  idle: "Closed: nobody wrote before the grace time ended.",
  max_wait: "Closed: it waited longer than its queue's maximum wait.",
};

const KEYWORD_TEXT = {
  stop: "The customer opted out of texts from this number (STOP).",
  stop_all: "The customer opted out of texts from all our numbers (STOP ALL).",
  start: "The customer opted in again (START).",
  help: "The customer asked for help (HELP).",
};

/** A short description of a refused command, for a person. */
export function refusal(error) {
  if (error instanceof CommandError) return error.detail || error.code;
  return error instanceof Error ? error.message : String(error);
}

function safeLink(url) {
  try {
    const parsed = new URL(url, window.location.href);
    return parsed.protocol === "http:" || parsed.protocol === "https:" ? parsed.href : null;
  } catch {
    return null;
  }
}

/** The last part of a file's address, e.g. "photo.png" of ".../media/TOKEN/photo.png". */
function fileName(href) {
  try {
    return decodeURIComponent(new URL(href).pathname.split("/").pop() ?? "");
  } catch {
    return "";
  }
}

export function stateLabel(conversation, userId) {
  const interaction = conversation.interaction;
  if (interaction.stale) return "Ended";
  if (interaction.agent_id !== userId && interaction.state !== "disconnected") return "Transferred";
  if (interaction.state === "disconnected" && conversation.wrapUp) return "Wrap-up";
  return STATE_TEXT[interaction.state] ?? interaction.state;
}

export class ConversationView {
  constructor({ conversation, page }) {
    this.id = conversation.id;
    this.page = page;
    const fragment = document.getElementById("conversation-template").content.cloneNode(true);
    this.root = fragment.querySelector(".conversation");
    this.root.id = `conversation-${this.id}`;
    this.root.dataset.interactionId = String(this.id);
    const $ = (selector) => this.root.querySelector(selector);
    this.el = {
      remote: $(".remote"),
      queue: $(".queue"),
      local: $(".local"),
      since: $(".since"),
      state: $(".state"),
      idle: $(".idle-notice"),
      closed: $(".closed-notice"),
      transcript: $(".transcript"),
      composer: $(".composer"),
      reply: $(".reply"),
      segments: $(".segments"),
      files: $(".files"),
      fileButton: $(".file-button"),
      attachments: $(".attachments"),
      send: $(".send"),
      composerError: $(".composer-error"),
      transfer: $(".transfer"),
      transferKind: $(".transfer-kind"),
      transferTo: $(".transfer-to"),
      transferButton: $(".transfer-button"),
      wrapUp: $(".wrap-up"),
      disconnect: $(".disconnect"),
      endWrapUp: $(".end-wrap-up"),
      closeTab: $(".close-tab"),
      actionError: $(".action-error"),
      cannedButton: $(".canned-button"),
    };
    const el = this.el;
    this.el.transferTo.setAttribute("list", "workgroup-names");
    this.messageItems = new Map(); // message id -> <li>
    this.uploads = []; // {name, size, id (once uploaded), error (if refused), element}
    this.segmentsTimer = null;
    this.segmentsAsked = 0;
    this.sending = false;
    this.live = false;
    this.stick = true; // keep the transcript scrolled to its newest text
    this._wire();
    this.picker = new CannedPicker({
      root: el.composer,
      reply: el.reply,
      load: () => page.cannedResponses(),
    });
    this.history = new HistoryView({ root: $(".history"), interactionId: this.id });
    document.getElementById("panels").append(this.root);
    this.update(conversation);
  }

  remove() {
    clearTimeout(this.segmentsTimer);
    this.root.remove();
  }

  /** The panel was just shown: bring the newest text into view, unless the agent scrolled up. */
  reveal() {
    if (this.stick) this.el.transcript.scrollTop = this.el.transcript.scrollHeight;
  }

  focusReply() {
    if (!this.el.reply.disabled) this.el.reply.focus();
  }

  // -- what the agent does ------------------------------------------------------------------

  _wire() {
    const el = this.el;
    el.composer.addEventListener("submit", (event) => {
      event.preventDefault();
      this._send();
    });
    el.reply.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        this._send();
      }
    });
    el.reply.addEventListener("input", () => this._countSoon());
    el.transcript.addEventListener("scroll", () => {
      const t = el.transcript;
      this.stick = t.scrollHeight - t.scrollTop - t.clientHeight < 40;
    });
    el.files.addEventListener("change", () => {
      const chosen = [...el.files.files];
      el.files.value = "";
      for (const file of chosen) this._upload(file);
    });
    el.transfer.addEventListener("submit", (event) => {
      event.preventDefault();
      this._transfer();
    });
    el.wrapUp.addEventListener("click", () => this._close("wrap_up"));
    el.disconnect.addEventListener("click", () => this._close("disconnect"));
    el.endWrapUp.addEventListener("click", () => this._endWrapUp());
    el.closeTab.addEventListener("click", () => this.page.closeTab(this.id));
  }

  _showError(element, text) {
    element.textContent = text;
    element.hidden = !text;
  }

  async _send() {
    if (this.sending || !this.live) return;
    const text = this.el.reply.value;
    const ready = this.uploads.filter((upload) => upload.id !== null);
    if (this.uploads.some((upload) => upload.id === null && upload.error === null)) {
      this._showError(this.el.composerError, "Wait until the files have uploaded.");
      return;
    }
    if (!text.trim() && ready.length === 0) return;
    const fields = { interaction_id: this.id, text };
    if (ready.length) fields.attachments = ready.map((upload) => upload.id);
    this.sending = true;
    this.el.send.disabled = true;
    this._showError(this.el.composerError, "");
    try {
      const result = await this.page.command("send", fields);
      this.page.desk.addMessage(result.message);
      if (this.el.reply.value === text) this.el.reply.value = "";
      for (const upload of ready) this._dropUpload(upload);
      this._countSoon();
    } catch (error) {
      const lost = error instanceof CommandError && error.code === "connection_lost";
      this._showError(
        this.el.composerError,
        lost
          ? "The connection dropped before Parley answered: look at the transcript before sending again."
          : `Not sent: ${refusal(error)}`,
      );
    } finally {
      this.sending = false;
      this.el.send.disabled = !this.live;
    }
  }

  _countSoon() {
    clearTimeout(this.segmentsTimer);
    this.segmentsTimer = setTimeout(() => this._count(), SEGMENTS_DELAY_MS);
  }

  async _count() {
    const text = this.el.reply.value;
    const asked = ++this.segmentsAsked;
    if (!text) {
      this.el.segments.textContent = "";
      delete this.el.segments.dataset.parts;
      return;
    }
    try {
      const count = await this.page.command("count_segments", { text });
      if (asked !== this.segmentsAsked) return; // the draft changed since
      const parts = count.parts === 1 ? "1 part" : `${count.parts} parts`;
      this.el.segments.textContent =
        `${count.encoding} · ${parts} · ${count.remaining_in_part} left in this part`;
      this.el.segments.dataset.parts = String(count.parts);
      this.el.segments.dataset.encoding = count.encoding;
    } catch {
      if (asked === this.segmentsAsked) this.el.segments.textContent = "";
    }
  }

  async _upload(file) {
    if (this.uploads.length >= MAX_FILES) {
      this._showError(this.el.composerError, `At most ${MAX_FILES} files go with one text.`);
      return;
    }
    const upload = { name: file.name, size: file.size, id: null, error: null, element: null };
    this.uploads.push(upload);
    this._renderUpload(upload);
    const body = new FormData();
    body.append("file", file, file.name);
    try {
      const answer = await fetch("/api/attachments", { method: "POST", body });
      const json = await answer.json().catch(() => null);
      if (!answer.ok) {
        throw new Error(json?.detail ?? `the upload was refused (${answer.status})`);
      }
      upload.id = json.id;
      upload.name = json.filename;
      upload.size = json.size;
      upload.mms = json.mms_capable;
    } catch (error) {
      upload.error = error instanceof Error ? error.message : String(error);
    }
    this._renderUpload(upload);
  }

  _renderUpload(upload) {
    if (upload.element === null) {
      const item = document.createElement("li");
      item.className = "attachment";
      const label = document.createElement("span");
      const remove = document.createElement("button");
      remove.type = "button";
      remove.className = "quiet";
      remove.textContent = "Remove";
      remove.addEventListener("click", () => this._dropUpload(upload));
      item.append(label, remove);
      upload.element = item;
      this.el.attachments.append(item);
    }
    const [label, remove] = upload.element.children;
    let state = "uploading…";
    if (upload.error !== null) state = `not uploaded: ${upload.error}`;
    else if (upload.id !== null) {
      state = format.bytes(upload.size) + (upload.mms ? "" : " · goes as a link");
    }
    label.textContent = `${upload.name} (${state})`;
    upload.element.dataset.state =
      upload.error !== null ? "failed" : upload.id !== null ? "ready" : "uploading";
    remove.setAttribute("aria-label", `Remove ${upload.name}`);
  }

  _dropUpload(upload) {
    this.uploads = this.uploads.filter((other) => other !== upload);
    upload.element?.remove();
  }

  async _transfer() {
    const name = this.el.transferTo.value.trim();
    if (!name) return;
    const kind = this.el.transferKind.value;
    this._showError(this.el.actionError, "");
    this.el.transferButton.disabled = true;
    try {
      await this.page.command("transfer", { interaction_id: this.id, to: { [kind]: name } });
      this.el.transferTo.value = "";
    } catch (error) {
      this._showError(this.el.actionError, `Not transferred: ${refusal(error)}`);
    } finally {
      this.el.transferButton.disabled = !this.live;
    }
  }

  async _close(type) {
    this._showError(this.el.actionError, "");
    try {
      await this.page.command(type, { interaction_id: this.id });
      if (type === "wrap_up") this.page.desk.setWrapUp(this.id, true);
    } catch (error) {
      this._showError(this.el.actionError, refusal(error));
    }
  }

  async _endWrapUp() {
    this._showError(this.el.actionError, "");
    try {
      await this.page.command("end_wrap_up", { interaction_id: this.id });
      this.page.desk.setWrapUp(this.id, false);
    } catch (error) {
      if (error instanceof CommandError && error.code === "illegal_state") {
        this.page.desk.setWrapUp(this.id, false); // it had timed out already
      } else {
        this._showError(this.el.actionError, refusal(error));
      }
    }
  }

  // -- what the agent sees ------------------------------------------------------------------

  update(conversation) {
    const interaction = conversation.interaction;
    const el = this.el;
    const mine = interaction.agent_id === this.page.userId && !interaction.stale;
    const open = interaction.state === "connected" || interaction.state === "idle";
    this.live = mine && open;
    this.root.dataset.state = interaction.state;
    el.remote.textContent = format.phone(interaction.remote_number);
    el.queue.textContent = interaction.queue?.name ?? "";
    el.local.textContent = format.phone(interaction.local_number);
    el.since.textContent = format.clockTime(interaction.created_at);
    el.since.title = format.fullTime(interaction.created_at);
    el.state.textContent = stateLabel(conversation, this.page.userId);
    el.state.dataset.state = interaction.state;

    this._renderNotices(conversation, mine);
    if (!this.live && this.picker.isOpen) this.picker.close({ focusReply: false });
    for (const control of [el.reply, el.files, el.transferKind, el.transferTo, el.cannedButton]) {
      control.disabled = !this.live;
    }
    el.send.disabled = !this.live || this.sending;
    el.transferButton.disabled = !this.live;
    el.fileButton.classList.toggle("disabled", !this.live);
    el.wrapUp.hidden = el.disconnect.hidden = !this.live;
    el.endWrapUp.hidden = !(mine && interaction.state === "disconnected" && conversation.wrapUp);
    el.closeTab.hidden = this.live || !el.endWrapUp.hidden;
    el.transfer.hidden = !this.live;
    el.composer.hidden = !this.live; // a closed conversation is read, not written in
    this._renderTranscript(conversation);
  }

  _renderNotices(conversation, mine) {
    const interaction = conversation.interaction;
    const el = this.el;
    el.idle.hidden = interaction.state !== "idle";
    if (interaction.state === "idle") this.tick(interaction);
    let closed = "";
    if (interaction.stale) {
      closed = "This conversation ended, or moved, while the page was away.";
    } else if (!mine && interaction.state !== "disconnected") {
      const where = interaction.queue?.kind === "user" ? "the user" : "the workgroup";
      closed = `Transferred to ${where} ${interaction.queue?.name ?? ""}: it is no longer yours.`;
    } else if (interaction.state === "disconnected") {
      closed = CLOSED_TEXT[interaction.closed_reason] ?? "Closed.";
      if (interaction.closed_at) closed += ` (${format.clockTime(interaction.closed_at)})`;
      if (conversation.wrapUp) closed += " Wrap-up: your slot is held until you end it.";
    }
    el.closed.textContent = closed;
    el.closed.hidden = !closed;
  }

  /** Every second: the idle countdown. */
  tick(interaction = null) {
    const current = interaction ?? this.page.desk.conversations.get(this.id)?.interaction;
    if (!current || current.state !== "idle") return;
    if (current.grace_until) {
      const left = format.duration(format.secondsUntil(current.grace_until));
      this.el.idle.textContent =
        `Idle: the customer was sent the idle warning. It closes at ` +
        `${format.clockTime(current.grace_until)} (in ${left}) unless someone writes.`;
    } else {
      this.el.idle.textContent = "Idle: nobody has written for a while.";
    }
  }

  _renderTranscript(conversation) {
    const transcript = this.el.transcript;
    let previous = null;
    let added = false;
    for (const message of conversation.ordered()) {
      let item = this.messageItems.get(message.id);
      if (item === undefined) {
        item = this._messageItem(message);
        this.messageItems.set(message.id, item);
        added = true;
      }
      this._messageStatus(item, message);
      const expected = previous === null ? transcript.firstElementChild : previous.nextSibling;
      if (expected !== item) {
        if (previous === null) transcript.prepend(item);
        else previous.after(item);
      }
      previous = item;
    }
    if (added && this.stick) transcript.scrollTop = transcript.scrollHeight;
  }

  _messageItem(message) {
    const item = document
      .getElementById("message-template")
      .content.firstElementChild.cloneNode(true);
    const system = message.direction === "outbound" && message.author_id === null;
    const kind = message.direction === "inbound" ? "inbound" : system ? "system" : "outbound";
    item.classList.add(kind);
    item.dataset.messageId = String(message.id);
    const body = item.querySelector(".body");
    body.textContent = message.body;
    body.hidden = message.body === "";
    let who = "Customer";
    if (kind === "system") who = "Parley (automatic)";
    else if (kind === "outbound") {
      who = message.author_id === this.page.userId ? "You" : "Another agent";
    }
    item.querySelector(".author").textContent = who;
    const when = item.querySelector(".when");
    when.dateTime = message.created_at;
    when.textContent = format.clockTime(message.created_at);
    when.title = format.fullTime(message.created_at);
    const media = item.querySelector(".media");
    for (const [index, file] of message.media.entries()) {
      const href = safeLink(file.url);
      const entry = document.createElement("li");
      const name = href === null ? "" : fileName(href);
      const label = `File: ${name || index + 1}${file.content_type ? ` (${file.content_type})` : ""}`;
      if (href === null) {
        entry.textContent = label;
      } else {
        const link = document.createElement("a");
        link.href = href;
        link.target = "_blank";
        link.rel = "noopener noreferrer";
        link.textContent = label;
        entry.append(link);
      }
      media.append(entry);
    }
    media.hidden = message.media.length === 0;
    if (message.keyword && KEYWORD_TEXT[message.keyword]) {
      const note = document.createElement("p");
      note.className = "keyword";
      note.textContent = KEYWORD_TEXT[message.keyword];
      item.querySelector(".bubble").append(note);
    }
    return item;
  }

  _messageStatus(item, message) {
    const status = item.querySelector(".status");
    // The author and the agent who holds the conversation hear of every move, Parley's own
    // texts' (the idle warning, notices) too.
    if (message.direction !== "outbound" || !message.status) {
      status.textContent = "";
      return;
    }
    if (item.dataset.status === message.status) return;
    item.dataset.status = message.status;
    status.dataset.status = message.status;
    let text = STATUS_TEXT[message.status] ?? message.status;
    if (message.status === "failed" && message.status_reason) {
      text += `: ${message.status_reason}`;
    }
    status.textContent = ` · ${text}`;
  }
}
