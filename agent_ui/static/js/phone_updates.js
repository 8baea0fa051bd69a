// What a simulated handset receives, pushed: the WebSocket /sandbox/phones/{phone}/updates
// (docs/brokers.md, "The phone side").
//
// `new PhoneUpdates(phone, handlers).start()` opens the socket and calls:
//
//   onStatus(status, detail)  "connecting" | "connected" | "reconnecting" | "refused"
//   onMessages(messages)      the handset's latest texts, oldest first, each time a socket
//                             opens: replace what you had
//   onMessage(message)        a text stored or changed since (the same id again: replace it)
//
// A dropped socket is opened again, backing off from 0.25 s to 5 s; the first frame of the new
// one brings everything back, so nothing is missed. A close 44xx (e.g. 4422, an impossible
// number) is final: `onStatus("refused", reason)`. `stop()` closes it for good.

import { reconnectDelay, socketUrl } from "./connection.js";

export function phoneUpdatesUrl(phone, location = window.location) {
  return socketUrl(`/sandbox/phones/${encodeURIComponent(phone)}/updates`, location);
}

export class PhoneUpdates {
  constructor(phone, { onStatus = () => {}, onMessages = () => {}, onMessage = () => {} } = {}) {
    this.url = phoneUpdatesUrl(phone);
    this.handlers = { onStatus, onMessages, onMessage };
    this._socket = null;
    this._attempt = 0;
    this._timer = null;
    this._stopped = false;
  }

  start() {
    this._stopped = false;
    this._open("connecting");
    return this;
  }

  stop() {
    this._stopped = true;
    clearTimeout(this._timer);
    if (this._socket) this._socket.close(1000, "bye");
    this._socket = null;
  }

  _open(status) {
    this.handlers.onStatus(status, "");
    const socket = new WebSocket(this.url);
    this._socket = socket;
    socket.addEventListener("message", (event) => {
      if (socket !== this._socket) return;
      const frame = JSON.parse(event.data);
      if (frame.type === "messages") {
        this._attempt = 0;
        this.handlers.onStatus("connected", "");
        this.handlers.onMessages(frame.messages);
      } else if (frame.type === "message") {
        this.handlers.onMessage(frame.message);
      }
    });
    socket.addEventListener("close", (event) => {
      if (socket !== this._socket || this._stopped) return;
      this._socket = null;
      if (event.code >= 4400 && event.code < 4500) {
        this.handlers.onStatus("refused", event.reason);
        return;
      }
      const wait = reconnectDelay(this._attempt);
      this._attempt += 1;
      this.handlers.onStatus("reconnecting", "");
      this._timer = setTimeout(() => this._open("reconnecting"), wait);
    });
  }
}
