// How the pages write numbers, times and durations for people.

/** "+14145550147" -> "+1 414 555 0147" (North American numbers); others as they are. */
export function phone(number) {
  const match = /^\+1(\d{3})(\d{3})(\d{4})$/.exec(number ?? "");
  return match ? `+1 ${match[1]} ${match[2]} ${match[3]}` : (number ?? "");
}

const timeFormat = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit" });
const dateTimeFormat = new Intl.DateTimeFormat(undefined, {
  dateStyle: "medium",
  timeStyle: "short",
});

/** A protocol time (RFC 3339) as a local time of day. */
export function clockTime(iso) {
  return iso ? timeFormat.format(new Date(iso)) : "";
}

export function fullTime(iso) {
  return iso ? dateTimeFormat.format(new Date(iso)) : "";
}

/** Seconds as "45 s", "2:05", "1 h 04". */
export function duration(seconds) {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
  return `${Math.floor(s / 3600)} h ${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}`;
}

/** File sizes as "930 B", "48 KB", "1.2 MB". */
export function bytes(size) {
  if (size < 1000) return `${size} B`;
  if (size < 1_000_000) return `${Math.round(size / 1000)} KB`;
  return `${(size / 1_000_000).toFixed(1)} MB`;
}

/** The server's clock, as far as this page can tell: `serverNow()` in milliseconds. */
let offsetMs = 0;

export function serverNow() {
  return Date.now() + offsetMs;
}

/** Seconds from the server's now until `iso` (negative once it has passed). */
export function secondsUntil(iso) {
  return (Date.parse(iso) - serverNow()) / 1000;
}

/**
 * Read the server's time from a response's Date header (whole seconds), so that countdowns hold
 * when this computer's clock is wrong. Offsets under two seconds are left alone.
 */
export async function learnServerClock() {
  try {
    const sent = Date.now();
    const answer = await fetch("/health", { cache: "no-store" });
    const received = Date.now();
    const date = Date.parse(answer.headers.get("Date") ?? "");
    if (Number.isNaN(date)) return;
    const estimate = date + 500 - (sent + received) / 2; // the header drops the milliseconds
    offsetMs = Math.abs(estimate) < 2000 ? 0 : estimate;
  } catch {
    // keep the last estimate
  }
}
