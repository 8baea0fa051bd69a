// The agent page (agent_ui/templates/agent.html): the agent's state, offers, and conversations
// in tabs, over the agent protocol (connection.js), kept in a Desk (desk.js).
//
// Events change the desk; the desk's listeners re-draw what changed (keyed by ids, so focus and
// drafts stay where they are). Offers ring (alerts.js) and count down; conversations opened by
// an event read their transcript with `get_interaction`.

import * as alerts from "./alerts.js";
import { AgentConnection } from "./connection.js";
import { ConversationView, refusal, stateLabel } from "./conversation_view.js";
import { Desk } from "./desk.js";
import * as format from "./format.js";

const TOAST_MS = 15_000;
const SELECTED_KEY = "parley.agent.selected";
const SOUND_KEY = "parley.agent.sound";

const STATE_TEXT = {
  available: "Available",
  busy: "Busy",
  away: "Away",
  offline: "Offline",
};

const CONNECTION_TEXT = {
  connecting: "Connecting…",
  connected: "Connected",
  reconnecting: "Connection lost: reconnecting…",
  "signed-out": "Your session has ended.",
  failed: "This page cannot talk to the server: reload it.",
  closed: "Disconnected.",
};

const app = document.getElementById("agent-app");
const $ = (id) => document.getElementById(id);
const userId = Number(app.dataset.userId);
const desk = new Desk(userId);

const offerCards = new Map(); // interaction id -> <article>
const tabs = new Map(); // interaction id -> <button role=tab>
const views = new Map(); // interaction id -> ConversationView
const loading = new Set(); // interaction ids whose transcript is being read
let selectedId = Number(sessionStorage.getItem(SELECTED_KEY)) || null;

const connection = new AgentConnection({
  onStatus: showConnection,
  onWelcome: (welcome) => {
    $("connection").dataset.resumed = String(welcome.resumed);
    format.learnServerClock();
  },
  onSnapshot: (snapshot) => {
    desk.applySnapshot(snapshot);
    readMissingTranscripts();
  },
  onEvent: (event) => react(desk.applyEvent(event)),
  onQueueFigures: (queues) => desk.applyQueueFigures(queues),
});

/** What a ConversationView needs from the page. */
const page = {
  desk,
  userId,
  command: (type, fields) => connection.command(type, fields),
  toast,
  closeTab,
  workgroupNames,
  cannedResponses,
};

/** The canned responses this agent may use (read afresh each time the picker opens). */
async function cannedResponses() {
  const answer = await fetch("/api/canned-responses", { headers: { Accept: "application/json" } });
  const json = await answer.json().catch(() => null);
  if (!answer.ok) throw new Error(json?.detail ?? `the server answered ${answer.status}`);
  return json.canned_responses;
}

// -- the connection ---------------------------------------------------------------------------

function showConnection(status, detail) {
  const element = $("connection");
  element.dataset.status = status;
  app.dataset.connection = status;
  element.replaceChildren(CONNECTION_TEXT[status] ?? status);
  if (status === "signed-out") {
    const link = document.createElement("a");
    link.href = "/sign-in";
    link.textContent = "Sign in again";
    element.append(" ", link);
  }
  element.title = status === "reconnecting" ? detail : "";
}

function react(outcome) {
  switch (outcome.kind) {
    case "offer":
      ring(outcome.offer);
      break;
    case "opened":
    case "orphan":
      readTranscript(outcome.id);
      break;
    case "message":
      if (outcome.isNew && outcome.inbound && (outcome.id !== selectedId || document.hidden)) {
        desk.markUnread(outcome.id);
      }
      break;
    default:
  }
}

function readMissingTranscripts() {
  for (const conversation of desk.conversations.values()) {
    if (!conversation.loaded) readTranscript(conversation.id);
  }
}

async function readTranscript(id) {
  if (loading.has(id)) return;
  loading.add(id);
  try {
    const found = await connection.command("get_interaction", { interaction_id: id });
    const fresh = !desk.conversations.has(id);
    desk.mergeInteraction(found.interaction, found.messages, { fresh });
    if (selectedId === null || !desk.conversations.has(selectedId)) select(id);
  } catch (error) {
    toast(`Could not read the conversation ${id}: ${refusal(error)}`);
  } finally {
    loading.delete(id);
  }
}

// -- alerts -----------------------------------------------------------------------------------

function soundOn() {
  return $("sound-on").checked;
}

function ring(offer) {
  const interaction = offer.interaction;
  const where = interaction.queue.kind === "user" ? "your direct number" : interaction.queue.name;
  // Screen readers: an offer is announced once, whatever has the focus.
  $("announcer").textContent =
    `New conversation from ${format.phone(interaction.remote_number)} in ${where}: ` +
    "accept or decline it in the offers.";
  const offers = $("offers");
  offers.dataset.alerts = String(Number(offers.dataset.alerts) + 1);
  if (soundOn()) offers.dataset.sound = alerts.chime() ? "played" : "blocked";
}

function toast(text) {
  const element = $("toast-template").content.firstElementChild.cloneNode(true);
  element.querySelector(".toast-text").textContent = text;
  const timer = setTimeout(() => element.remove(), TOAST_MS);
  element.querySelector(".dismiss").addEventListener("click", () => {
    clearTimeout(timer);
    element.remove();
  });
  $("toasts").append(element);
}

// -- the agent's state ------------------------------------------------------------------------

async function setState(state, reason) {
  const error = $("state-error");
  error.hidden = true;
  const fields = state === "away" ? { state, reason: reason || null } : { state };
  try {
    await connection.command("set_state", fields);
  } catch (failure) {
    error.textContent = `Your state did not change: ${refusal(failure)}`;
    error.hidden = false;
  }
}

function renderAgent() {
  const agent = desk.agent;
  const badge = $("agent-state");
  // What the server says: it sends agent_state when accepting, offering or closing fills or
  // frees the last slot ("busy" / "available"), as when the presence changes.
  const state = agent?.state ?? "offline";
  badge.dataset.state = state;
  badge.textContent = STATE_TEXT[state] ?? state;
  $("agent-reason").textContent = agent?.reason ? `(${agent.reason})` : "";
  $("agent-load").textContent = agent
    ? `${desk.held()} of ${agent.capacity} conversations · since ${format.clockTime(agent.since)}`
    : "";
  $("go-available").setAttribute("aria-pressed", String(state === "available" || state === "busy"));
  $("go-away").setAttribute("aria-pressed", String(state === "away"));
}

function renderQueues() {
  const list = $("queue-list");
  const items = [...desk.queues.values()].sort((a, b) => a.name.localeCompare(b.name));
  list.replaceChildren(
    ...items.map((queue) => {
      const item = document.createElement("li");
      item.dataset.queue = `${queue.kind}:${queue.id}`;
      const name = document.createElement("span");
      name.className = "queue-name";
      name.textContent = queue.kind === "user" ? `${queue.name} (you)` : queue.name;
      const figures = document.createElement("span");
      figures.className = "muted";
      figures.textContent = `${queue.waiting} waiting`;
      if (queue.oldest_enqueued_at) {
        figures.dataset.oldest = queue.oldest_enqueued_at;
      }
      item.append(name, " ", figures);
      return item;
    }),
  );
  $("no-queues").hidden = items.length > 0;
  tickQueues();
  const names = $("workgroup-names");
  const wanted = workgroupNames();
  if (names.dataset.names !== wanted.join("\n")) {
    names.dataset.names = wanted.join("\n");
    names.replaceChildren(
      ...wanted.map((name) => Object.assign(document.createElement("option"), { value: name })),
    );
  }
}

function workgroupNames() {
  return [...desk.queues.values()].filter((q) => q.kind === "workgroup").map((q) => q.name);
}

function tickQueues() {
  for (const figures of $("queue-list").querySelectorAll("[data-oldest]")) {
    const waited = -format.secondsUntil(figures.dataset.oldest);
    const base = figures.textContent.split(" · ")[0];
    figures.textContent = `${base} · longest ${format.duration(waited)}`;
  }
}

// -- offers -----------------------------------------------------------------------------------

function renderOffers() {
  const container = $("offers");
  for (const [id, card] of offerCards) {
    if (!desk.offers.has(id)) {
      if (card.contains(document.activeElement)) $("main").focus();
      card.remove();
      offerCards.delete(id);
    }
  }
  for (const [id, offer] of desk.offers) {
    if (offerCards.has(id)) continue;
    const card = $("offer-template").content.firstElementChild.cloneNode(true);
    card.dataset.interactionId = String(id);
    card.dataset.expiresAt = offer.expires_at;
    const title = `offer-title-${id}`;
    card.setAttribute("aria-labelledby", title);
    card.querySelector(".offer-title").id = title;
    const interaction = offer.interaction;
    const remote = format.phone(interaction.remote_number);
    card.querySelector(".offer-remote").textContent = remote;
    card.querySelector(".offer-queue").textContent =
      interaction.queue.kind === "user" ? "your direct number" : interaction.queue.name;
    card.querySelector(".offer-since").textContent = format.clockTime(interaction.enqueued_at);
    const accept = card.querySelector(".accept");
    const decline = card.querySelector(".decline");
    accept.setAttribute("aria-label", `Accept the conversation with ${remote}`);
    decline.setAttribute("aria-label", `Decline the conversation with ${remote}`);
    accept.addEventListener("click", () => answerOffer(id, "accept", card));
    decline.addEventListener("click", () => answerOffer(id, "decline", card));
    card.classList.add("alerting");
    container.append(card);
    offerCards.set(id, card);
  }
  tickOffers();
  container.setAttribute("aria-label", desk.offers.size ? `Offers (${desk.offers.size})` : "Offers");
  if (desk.offers.size === 0) alerts.stopTitle();
  else alerts.flashTitle("New offer");
}

async function answerOffer(id, type, card) {
  const buttons = card.querySelectorAll("button");
  for (const button of buttons) button.disabled = true;
  const remote = card.querySelector(".offer-remote").textContent;
  try {
    const result = await connection.command(type, { interaction_id: id });
    if (type === "accept") {
      desk.mergeInteraction(result.interaction, null, { fresh: true });
      select(id);
      await readTranscript(id);
      views.get(id)?.focusReply();
    }
  } catch (error) {
    const verb = type === "accept" ? "accept" : "decline";
    toast(`Could not ${verb} the conversation with ${remote}: ${refusal(error)}`);
    for (const button of buttons) button.disabled = false;
  }
}

function tickOffers() {
  for (const card of offerCards.values()) {
    const left = format.secondsUntil(card.dataset.expiresAt);
    card.querySelector(".offer-countdown").textContent =
      left > 0.5 ? format.duration(left) : "a moment";
    card.classList.toggle("ending", left < 10);
  }
}

// -- conversations ----------------------------------------------------------------------------

function renderConversations() {
  const tabList = $("tabs");
  for (const [id, view] of views) {
    if (!desk.conversations.has(id)) {
      view.remove();
      views.delete(id);
      tabs.get(id)?.remove();
      tabs.delete(id);
    }
  }
  const ordered = [...desk.conversations.values()].sort((a, b) => a.id - b.id);
  for (const conversation of ordered) {
    let tab = tabs.get(conversation.id);
    if (tab === undefined) {
      tab = $("tab-template").content.firstElementChild.cloneNode(true);
      tab.id = `tab-${conversation.id}`;
      tab.dataset.interactionId = String(conversation.id);
      tab.setAttribute("aria-controls", `conversation-${conversation.id}`);
      tab.addEventListener("click", () => select(conversation.id));
      tab.addEventListener("keydown", moveBetweenTabs);
      tabList.append(tab);
      tabs.set(conversation.id, tab);
      const view = new ConversationView({ conversation, page });
      view.root.setAttribute("aria-labelledby", tab.id);
      views.set(conversation.id, view);
    } else {
      views.get(conversation.id).update(conversation);
    }
    const label = stateLabel(conversation, userId);
    tab.dataset.state = conversation.interaction.state;
    tab.querySelector(".tab-remote").textContent = format.phone(
      conversation.interaction.remote_number,
    );
    tab.querySelector(".tab-state").textContent = `, ${label}`;
    tab.querySelector(".tab-dot").dataset.label = label;
    const unread = tab.querySelector(".tab-unread");
    unread.hidden = conversation.unread === 0;
    unread.textContent = conversation.unread ? `${conversation.unread} new` : "";
  }
  if (!desk.conversations.has(selectedId)) {
    selectedId = null;
    if (ordered.length) select(ordered[ordered.length - 1].id);
  }
  showSelection();
  $("no-conversations").hidden = desk.conversations.size > 0;
}

function select(id) {
  if (!desk.conversations.has(id)) return;
  selectedId = id;
  sessionStorage.setItem(SELECTED_KEY, String(id));
  desk.markRead(id);
  showSelection();
}

function showSelection() {
  for (const [id, tab] of tabs) {
    const chosen = id === selectedId;
    tab.setAttribute("aria-selected", String(chosen));
    tab.tabIndex = chosen ? 0 : -1;
    const view = views.get(id);
    if (view && view.root.hidden === chosen) {
      view.root.hidden = !chosen;
      if (chosen) view.reveal();
    }
  }
}

function moveBetweenTabs(event) {
  const ids = [...tabs.keys()];
  const at = ids.indexOf(selectedId);
  let next = null;
  if (event.key === "ArrowRight") next = ids[(at + 1) % ids.length];
  else if (event.key === "ArrowLeft") next = ids[(at - 1 + ids.length) % ids.length];
  else if (event.key === "Home") next = ids[0];
  else if (event.key === "End") next = ids[ids.length - 1];
  if (next === null || next === undefined) return;
  event.preventDefault();
  select(next);
  tabs.get(next).focus();
}

function closeTab(id) {
  const ids = [...tabs.keys()];
  const at = ids.indexOf(id);
  desk.forget(id);
  const neighbour = ids[at + 1] ?? ids[at - 1];
  if (neighbour !== undefined && desk.conversations.has(neighbour)) {
    select(neighbour);
    tabs.get(neighbour)?.focus();
  } else {
    $("main").focus();
  }
}

// -- starting a conversation ------------------------------------------------------------------

async function readFromNumbers() {
  const select = $("new-from");
  try {
    const answer = await fetch("/api/conversations/from-numbers");
    const json = await answer.json().catch(() => null);
    if (!answer.ok) throw new Error(json?.detail ?? `the server answered ${answer.status}`);
    select.replaceChildren(
      ...json.numbers.map((number) => {
        const where = number.kind === "user" ? "your number" : number.workgroup;
        return Object.assign(document.createElement("option"), {
          value: number.number,
          textContent: `${format.phone(number.number)} (${where})`,
          selected: number.default,
        });
      }),
    );
    if (json.numbers.length === 0) {
      select.replaceChildren(new Option("You have no number to text from", ""));
    }
    select.disabled = json.numbers.length === 0;
  } catch (error) {
    showNewError(`Could not read your numbers: ${error.message}`);
  }
}

function showNewError(text) {
  $("new-error").textContent = text;
  $("new-error").hidden = !text;
}

async function startConversation(event) {
  event.preventDefault();
  const to = $("new-to").value.trim();
  const text = $("new-text").value;
  // checked here, so that the reason shows in the form (the protocol would refuse the frame)
  if (to.length < 3 || to.length > 32) {
    showNewError("Write the customer's whole number, e.g. +1 414 555 0100.");
    $("new-to").focus();
    return;
  }
  if (!text.trim()) {
    showNewError("Write the first text.");
    $("new-text").focus();
    return;
  }
  const fields = { to, text };
  if ($("new-from").value) fields.from = $("new-from").value;
  showNewError("");
  $("new-start").disabled = true;
  try {
    const result = await connection.command("start_conversation", fields);
    $("new-to").value = "";
    $("new-text").value = "";
    await readTranscript(result.interaction_id);
    select(result.interaction_id);
    views.get(result.interaction_id)?.focusReply();
  } catch (error) {
    showNewError(`Not started: ${refusal(error)}`);
  } finally {
    $("new-start").disabled = false;
  }
}

// -- drawing ----------------------------------------------------------------------------------

let drawPending = false;

function draw() {
  drawPending = false;
  renderAgent();
  renderQueues();
  renderOffers();
  renderConversations();
}

desk.subscribe(() => {
  if (drawPending) return;
  drawPending = true;
  queueMicrotask(draw);
});

setInterval(() => {
  tickOffers();
  tickQueues();
  for (const view of views.values()) view.tick();
}, 1000);

document.addEventListener("visibilitychange", () => {
  if (!document.hidden && selectedId !== null) desk.markRead(selectedId);
});

// -- controls ---------------------------------------------------------------------------------

$("go-available").addEventListener("click", () => setState("available"));
$("new-conversation-form").addEventListener("submit", startConversation);
$("new-conversation").addEventListener("toggle", () => {
  if ($("new-conversation").open) $("new-to").focus();
});
$("away-form").addEventListener("submit", (event) => {
  event.preventDefault();
  setState("away", $("away-reason").value.trim());
});
const sound = $("sound-on");
sound.checked = localStorage.getItem(SOUND_KEY) !== "off";
sound.addEventListener("change", () => {
  localStorage.setItem(SOUND_KEY, sound.checked ? "on" : "off");
});
// Sound may start only after the agent used the page.
for (const type of ["pointerdown", "keydown"]) {
  document.addEventListener(type, () => alerts.unlockSound(), { capture: true });
}
window.addEventListener("parley:sign-out", () => connection.stop());
window.addEventListener("pagehide", () => connection.stop());
window.addEventListener("pageshow", (event) => {
  if (event.persisted) connection.start(); // back from the browser's page cache
});

draw();
connection.start();
readFromNumbers();
