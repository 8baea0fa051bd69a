// The phone simulator (templates/phone.html): one customer's handset against the sandbox broker.
// It sends with POST /sandbox/phones/{phone}/messages and shows the texts between this phone
// and the chosen business number as the sandbox pushes them (phone_updates.js): the agents'
// replies, Parley's notices and closing texts, each with its delivery status. The page is
// linkable: /phone?phone=+14145550147&to=+19205550100 opens that phone on that thread.

import { clockTime, fullTime, phone as spaced } from "./format.js";
import { PhoneUpdates } from "./phone_updates.js";

const PHONE_KEY = "parley.simulator.phone";
const TO_KEY = "parley.simulator.to";
const DEFAULT_PHONE = "+14145550147";
const IMAGE_PATH = /\.(png|jpe?g|gif|webp)$/i;

const choice = document.getElementById("phone-choice");
const phoneInput = document.getElementById("phone-number");
const businessSelect = document.getElementById("business-number");
const numbersError = document.getElementById("numbers-error");
const connection = document.getElementById("phone-connection");
const thread = document.getElementById("phone-thread");
const empty = document.getElementById("phone-empty");
const composer = document.getElementById("phone-composer");
const textBox = document.getElementById("phone-text");
const mediaInput = document.getElementById("phone-media");
const sendButton = document.getElementById("phone-send");
const sendError = document.getElementById("phone-error");
const messageTemplate = document.getElementById("phone-message-template");

let updates = null;
let openPhone = null; // the number the socket was opened for, as typed
let messages = new Map(); // id -> message, in the order the sandbox stored them

const CONNECTION_TEXT = {
  idle: "Pick a number",
  connecting: "Connecting…",
  connected: "Connected to the sandbox",
  reconnecting: "Connection lost: reconnecting…",
  refused: "Refused",
};

function setConnection(status, detail) {
  connection.dataset.status = status;
  connection.textContent = detail ? `${CONNECTION_TEXT[status]}: ${detail}` : CONNECTION_TEXT[status];
}

/** The status a text shows under it: the customer's own (did Parley take it?) or a received one
 *  (the receipt the sandbox reports to Parley). */
function statusText(message) {
  const fromPhone = message.direction === "from_phone";
  switch (message.status) {
    case "delivered":
      return "✓✓ Delivered";
    case "sent":
      return "✓ Sent";
    case "failed":
      return `Not delivered${message.reason ? `: ${message.reason}` : ""}`;
    default:
      return fromPhone ? "Sending…" : "Accepted";
  }
}

function mediaItem(url) {
  const item = document.createElement("li");
  let sameOrigin = false;
  let path = url;
  try {
    const parsed = new URL(url, window.location.href);
    sameOrigin = parsed.origin === window.location.origin;
    path = parsed.pathname;
  } catch {
    // shown as a link below
  }
  const link = document.createElement("a");
  link.href = url;
  link.target = "_blank";
  link.rel = "noopener noreferrer";
  if (sameOrigin && IMAGE_PATH.test(path)) {
    const image = document.createElement("img");
    image.src = url;
    image.alt = `Picture ${decodeURIComponent(path.split("/").pop())}`;
    image.className = "phone-picture";
    link.append(image);
  } else {
    link.textContent = `Picture: ${url}`;
  }
  item.append(link);
  return item;
}

function renderMessage(message) {
  const node = messageTemplate.content.firstElementChild.cloneNode(true);
  const fromPhone = message.direction === "from_phone";
  node.dataset.id = message.id;
  node.dataset.status = message.status;
  node.classList.add(fromPhone ? "from-phone" : "to-phone");
  node.querySelector(".body").textContent = message.text;
  node.querySelector(".body").hidden = !message.text;
  const media = node.querySelector(".media");
  for (const url of message.media) media.append(mediaItem(url));
  media.hidden = message.media.length === 0;
  const time = node.querySelector("time");
  time.dateTime = message.created_at;
  time.textContent = clockTime(message.created_at);
  time.title = fullTime(message.created_at);
  const status = node.querySelector(".status");
  status.dataset.status = message.status;
  status.textContent = `· ${statusText(message)}`;
  node.setAttribute("aria-label", `${fromPhone ? "You" : "Business"}: ${message.text}`);
  return node;
}

/** The texts between this phone and the chosen business number. */
function inThread(message) {
  const business = message.direction === "from_phone" ? message.to : message.from;
  return business === businessSelect.value;
}

function render() {
  const shown = [...messages.values()].filter(inThread);
  const nearBottom = thread.scrollHeight - thread.scrollTop - thread.clientHeight < 40;
  thread.replaceChildren(...shown.map(renderMessage));
  empty.hidden = shown.length > 0 || openPhone === null;
  if (nearBottom || shown.length <= 1) thread.scrollTop = thread.scrollHeight;
}

function showError(node, text) {
  node.textContent = text;
  node.hidden = !text;
}

function remember() {
  const url = new URL(window.location.href);
  url.searchParams.set("phone", phoneInput.value.trim());
  if (businessSelect.value) url.searchParams.set("to", businessSelect.value);
  window.history.replaceState(null, "", url);
  localStorage.setItem(PHONE_KEY, phoneInput.value.trim());
  if (businessSelect.value) localStorage.setItem(TO_KEY, businessSelect.value);
}

function open() {
  const number = phoneInput.value.trim();
  if (!number) return;
  if (updates) updates.stop();
  openPhone = number;
  messages = new Map();
  render();
  remember();
  document.getElementById("handset-title").textContent = `Messages · ${spaced(number)}`;
  updates = new PhoneUpdates(number, {
    onStatus: setConnection,
    onMessages: (list) => {
      messages = new Map(list.map((message) => [message.id, message]));
      render();
    },
    onMessage: (message) => {
      messages.set(message.id, message);
      render();
    },
  }).start();
}

async function loadNumbers(wanted) {
  try {
    const answer = await fetch("/sandbox/numbers", { cache: "no-store" });
    if (!answer.ok) throw new Error(`the sandbox answered ${answer.status}`);
    const { numbers } = await answer.json();
    businessSelect.replaceChildren(
      ...numbers.map(({ number, name }) => {
        const option = document.createElement("option");
        option.value = number;
        option.textContent = name && name !== number ? `${spaced(number)} · ${name}` : spaced(number);
        return option;
      }),
    );
    if (numbers.some(({ number }) => number === wanted)) businessSelect.value = wanted;
    if (numbers.length === 0) {
      showError(numbersError, "The sandbox has no numbers: configure a sandbox account first.");
    }
  } catch (error) {
    showError(numbersError, `The sandbox's numbers could not be read (${error.message}).`);
  }
}

async function send() {
  showError(sendError, "");
  const text = textBox.value;
  const media = mediaInput.value.trim();
  if (!openPhone) {
    showError(sendError, "Open a phone first.");
    return;
  }
  if (!text.trim() && !media) {
    showError(sendError, "Write a text or give a picture link.");
    textBox.focus();
    return;
  }
  const body = { to: businessSelect.value, text };
  if (media) body.media = [media];
  sendButton.disabled = true;
  try {
    const answer = await fetch(`/sandbox/phones/${encodeURIComponent(openPhone)}/messages`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });
    if (answer.ok) {
      textBox.value = "";
      mediaInput.value = "";
    } else {
      const json = await answer.json().catch(() => null);
      const detail = json?.detail ?? `the sandbox answered ${answer.status}`;
      showError(
        sendError,
        answer.status === 502 ? `Parley did not take the text: ${detail}` : `Not sent: ${detail}`,
      );
    }
  } catch {
    showError(sendError, "The sandbox cannot be reached: check the network and try again.");
  } finally {
    sendButton.disabled = false;
    textBox.focus();
  }
}

choice.addEventListener("submit", (event) => {
  event.preventDefault();
  open();
  textBox.focus();
});

businessSelect.addEventListener("change", () => {
  remember();
  render();
});

composer.addEventListener("submit", (event) => {
  event.preventDefault();
  send();
});

textBox.addEventListener("keydown", (event) => {
  if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
    event.preventDefault();
    send();
  }
});

/** A number from the address: "?phone=+1414..." typed by hand arrives as " 1414..." (a "+" in a
 *  query is a space), so a leading space before digits is the "+" it was. */
function fromQuery(name) {
  return query.get(name)?.replace(/^ (?=\d)/, "+") ?? null;
}

const query = new URLSearchParams(window.location.search);
phoneInput.value = fromQuery("phone") ?? localStorage.getItem(PHONE_KEY) ?? DEFAULT_PHONE;
setConnection("idle", "");
await loadNumbers(fromQuery("to") ?? localStorage.getItem(TO_KEY));
open();
