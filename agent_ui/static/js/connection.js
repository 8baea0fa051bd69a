// The agent protocol, version 1, over one WebSocket (docs/protocol.md): the browser's client.
//
// `new AgentConnection(handlers).start()` opens `/agent/ws` on this page's host; the session
// cookie authenticates the handshake, so `hello` carries no token. The connection then calls:
//
//   onStatus(status, detail)  "connecting" | "connected" | "reconnecting" | "signed-out" | "failed"
//   onWelcome(welcome)        each time a connection opens (welcome.resumed says which follows)
//   onSnapshot(snapshot)      the agent's whole state; replace what you had
//   onEvent(event, seq)       each event once, in order (also those replayed after a reconnect)
//   onQueueFigures(queues)    queue figures (not events: no seq)
//   onSupervision(frame)      a supervisor's `supervisor_snapshot` or `supervisor_update`
//                             (only with `supervise: true`, which hello then carries)
//
// Events are acknowledged after `onEvent` returns: an offer at once (it counts as delivered when
// acknowledged), the others within ACK_DELAY_MS. Pings are answered; the client pings when it
// has sent nothing for a heartbeat, and drops a connection it has heard nothing on for three.
// A dropped connection is opened again (backing off up to 5 s) with `resume_from` = the last
// seq handled, so nothing is missed or handled twice; the server sends a snapshot instead when
// it no longer keeps the gap. Close codes 4001 (the session ended) and 4003 (no common version)
// are final: the page must be reloaded or signed in again.
//
// `command(type, fields)` sends a command and returns a promise of its result; it rejects with
// a `CommandError` (`code`, `detail`): the server's `command_error`, or `not_connected`,
// `connection_lost` (the server may or may not have carried it out) and `timeout`.

export const PROTOCOL_VERSION = 1;
const CLIENT_NAME = "parley-web/1";
const COMMAND_TIMEOUT_MS = 30_000;
const ACK_DELAY_MS = 200;
const BACKOFF_MS = [250, 500, 1000, 2000, 4000, 5000];
const WELCOME_TIMEOUT_MS = 15_000; // the server answers hello within its own 10 s limit
const FINAL_CLOSES = new Map([
  [4001, "signed-out"], // authentication failed: no valid session cookie
  [4003, "failed"], // unsupported version: this page is older than the server
]);

export class CommandError extends Error {
  constructor(code, detail) {
    super(`${code}: ${detail}`);
    this.name = "CommandError";
    this.code = code;
    this.detail = detail;
  }
}

/** The WebSocket URL of `path` on this page's server (wss: under https:). */
export function socketUrl(path, location = window.location) {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${location.host}${path}`;
}

export function agentSocketUrl(location = window.location) {
  return socketUrl("/agent/ws", location);
}

/** How long to wait before reopening a dropped socket, the `attempt`-th time (from 0). */
export function reconnectDelay(attempt) {
  return BACKOFF_MS[Math.min(attempt, BACKOFF_MS.length - 1)];
}

export class AgentConnection {
  constructor({
    url = agentSocketUrl(),
    onStatus = () => {},
    onWelcome = () => {},
    onSnapshot = () => {},
    onEvent = () => {},
    onQueueFigures = () => {},
    onSupervision = () => {},
    supervise = false, // true: ask for the supervisor frames (a supervisor's dashboard)
  } = {}) {
    this.url = url;
    this.supervise = supervise;
    this.handlers = { onStatus, onWelcome, onSnapshot, onEvent, onQueueFigures, onSupervision };
    this.status = "connecting";
    this.lastSeq = null; // the last event handled; null before the first snapshot
    this.welcome = null;
    this._socket = null;
    this._stopped = false;
    this._attempt = 0;
    this._ready = false; // welcome received on the current socket
    this._nextId = 1;
    this._pending = new Map(); // command id -> {resolve, reject, timer}
    this._ackedSeq = 0;
    this._ackTimer = null;
    this._heartbeatTimer = null;
    this._reconnectTimer = null;
    this._welcomeTimer = null;
    this._lastHeard = 0;
    this._lastSent = 0;
    this._onOnline = () => this._reconnectNow();
  }

  start() {
    this._stopped = false;
    window.addEventListener("online", this._onOnline);
    this._open();
  }

  /** Close for good (signing out, leaving the page): no reconnect. */
  stop() {
    this._stopped = true;
    window.removeEventListener("online", this._onOnline);
    clearTimeout(this._reconnectTimer);
    this._flushAck();
    this._drop(1000, "closed by the page");
  }

  get connected() {
    return this._ready && this._socket !== null && this._socket.readyState === WebSocket.OPEN;
  }

  /** Send a command; resolves with its `result`, rejects with a `CommandError`. */
  command(type, fields = {}) {
    if (!this.connected) {
      return Promise.reject(
        new CommandError("not_connected", "Not connected to Parley; wait until it reconnects."),
      );
    }
    const id = `w${this._nextId++}`;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this._pending.delete(id);
        reject(new CommandError("timeout", "Parley did not answer in time."));
      }, COMMAND_TIMEOUT_MS);
      this._pending.set(id, { resolve, reject, timer });
      this._send({ type, id, ...fields });
    });
  }

  // -- the socket ---------------------------------------------------------------------------

  _setStatus(status, detail = "") {
    this.status = status;
    this.handlers.onStatus(status, detail);
  }

  _open() {
    clearTimeout(this._reconnectTimer);
    this._ready = false;
    let socket;
    try {
      socket = new WebSocket(this.url);
    } catch (error) {
      this._scheduleReconnect(String(error));
      return;
    }
    this._socket = socket;
    socket.onopen = () => {
      this._lastHeard = this._lastSent = Date.now();
      const hello = { type: "hello", versions: [PROTOCOL_VERSION], client: CLIENT_NAME };
      if (this.lastSeq !== null) hello.resume_from = this.lastSeq;
      if (this.supervise) hello.supervise = true;
      this._send(hello);
      this._welcomeTimer = setTimeout(() => {
        if (socket !== this._socket || this._ready) return;
        this._drop(4000, "no welcome");
        this._scheduleReconnect("Parley did not answer the hello");
      }, WELCOME_TIMEOUT_MS);
    };
    socket.onmessage = (message) => {
      if (socket !== this._socket) return;
      this._lastHeard = Date.now();
      this._receive(message.data);
    };
    socket.onclose = (close) => {
      if (socket !== this._socket) return;
      this._closed(close.code, close.reason);
    };
    socket.onerror = () => {}; // a close event follows
  }

  _send(frame) {
    const socket = this._socket;
    if (socket === null || socket.readyState !== WebSocket.OPEN) return false;
    socket.send(JSON.stringify(frame));
    this._lastSent = Date.now();
    return true;
  }

  /** Forget the current socket (its late events are ignored) and close it. */
  _drop(code, reason) {
    const socket = this._socket;
    this._socket = null;
    this._stopTimers();
    if (socket !== null && socket.readyState <= WebSocket.OPEN) {
      try {
        socket.close(code, reason);
      } catch {
        socket.close();
      }
    }
  }

  _failPending() {
    for (const [id, pending] of this._pending) {
      clearTimeout(pending.timer);
      pending.reject(
        new CommandError(
          "connection_lost",
          "The connection dropped before Parley answered; it may or may not have been done.",
        ),
      );
      this._pending.delete(id);
    }
  }

  /** The current socket is gone: stop its timers and fail the commands waiting on it. */
  _stopTimers() {
    this._ready = false;
    clearInterval(this._heartbeatTimer);
    this._heartbeatTimer = null;
    clearTimeout(this._ackTimer);
    this._ackTimer = null;
    clearTimeout(this._welcomeTimer);
    this._welcomeTimer = null;
    this._failPending();
  }

  _closed(code, reason) {
    this._socket = null;
    this._stopTimers();
    if (this._stopped) {
      this._setStatus("closed");
      return;
    }
    const final = FINAL_CLOSES.get(code);
    if (final !== undefined) {
      this._stopped = true;
      this._setStatus(final, reason || `closed with ${code}`);
      return;
    }
    this._scheduleReconnect(reason || `closed with ${code}`);
  }

  _scheduleReconnect(detail) {
    if (this._stopped) return;
    const delay = reconnectDelay(this._attempt);
    this._attempt += 1;
    this._setStatus("reconnecting", detail);
    clearTimeout(this._reconnectTimer);
    this._reconnectTimer = setTimeout(() => this._open(), delay * (0.8 + 0.4 * Math.random()));
  }

  _reconnectNow() {
    if (this._stopped || this._socket !== null) return;
    clearTimeout(this._reconnectTimer);
    this._open();
  }

  // -- frames from the server ---------------------------------------------------------------

  _receive(text) {
    let frame;
    try {
      frame = JSON.parse(text);
    } catch {
      this._drop(4002, "bad frame: not JSON");
      this._scheduleReconnect("the server sent a frame that is not JSON");
      return;
    }
    switch (frame.type) {
      case "welcome":
        this._welcomed(frame);
        break;
      case "snapshot":
        this.lastSeq = frame.seq;
        this._ackedSeq = frame.seq;
        this.handlers.onSnapshot(frame);
        // Its offers count as delivered once its seq is acknowledged (docs/protocol.md).
        if (frame.offers.length) this._send({ type: "ack", seq: frame.seq });
        break;
      case "event":
        this._event(frame);
        break;
      case "command_ack":
      case "command_error":
        this._answered(frame);
        break;
      case "ping":
        this._send({ type: "pong" });
        break;
      case "pong":
        break;
      case "queue_figures":
        this.handlers.onQueueFigures(frame.queues);
        break;
      case "supervisor_snapshot":
      case "supervisor_update":
        this.handlers.onSupervision(frame);
        break;
      default:
        console.warn("Parley: an unknown frame was ignored", frame.type);
    }
  }

  _welcomed(welcome) {
    this.welcome = welcome;
    this._ready = true;
    clearTimeout(this._welcomeTimer);
    this._welcomeTimer = null;
    this._attempt = 0;
    const interval = Math.max(1, Number(welcome.heartbeat_s) || 15) * 1000;
    clearInterval(this._heartbeatTimer);
    this._heartbeatTimer = setInterval(() => this._heartbeat(interval), Math.min(interval, 5000));
    this.handlers.onWelcome(welcome);
    this._setStatus("connected");
  }

  _event(frame) {
    const seq = frame.seq;
    if (this.lastSeq !== null && seq <= this.lastSeq) return; // had it already
    if (this.lastSeq !== null && seq !== this.lastSeq + 1) {
      // Events are missing: start again from the last one handled.
      this._drop(1000, "events missing");
      this._scheduleReconnect(`event ${seq} came after ${this.lastSeq}`);
      return;
    }
    this.handlers.onEvent(frame.event, seq);
    this.lastSeq = seq;
    if (frame.event.kind === "offer") {
      this._flushAck();
    } else if (this._ackTimer === null) {
      this._ackTimer = setTimeout(() => this._flushAck(), ACK_DELAY_MS);
    }
  }

  _flushAck() {
    clearTimeout(this._ackTimer);
    this._ackTimer = null;
    if (this.lastSeq !== null && this.lastSeq > this._ackedSeq && this._ready) {
      if (this._send({ type: "ack", seq: this.lastSeq })) this._ackedSeq = this.lastSeq;
    }
  }

  _answered(frame) {
    const pending = this._pending.get(frame.id);
    if (pending === undefined) return; // its caller gave up waiting
    this._pending.delete(frame.id);
    clearTimeout(pending.timer);
    if (frame.type === "command_ack") {
      pending.resolve(frame.result);
    } else {
      pending.reject(new CommandError(frame.code, frame.detail));
    }
  }

  _heartbeat(interval) {
    const now = Date.now();
    if (now - this._lastHeard > 3 * interval) {
      this._drop(4008, "heartbeat timeout");
      this._scheduleReconnect("heard nothing from Parley for three heartbeats");
      return;
    }
    if (now - this._lastSent >= interval) this._send({ type: "ping" });
  }
}
