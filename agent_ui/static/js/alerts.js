// Getting the agent's attention: a short chime (Web Audio, no sound file) and the page title.
//
// Browsers let a page play sound only after the person has used it: call `unlockSound()` from a
// click or key press (the page does, on the first one). `chime()` plays when it may and says
// whether it did. `flashTitle(text)` alternates the title with `text` until `stopTitle()`.

let context = null;

export function unlockSound() {
  const AudioContextClass = window.AudioContext ?? window.webkitAudioContext;
  if (AudioContextClass === undefined) return;
  if (context === null) {
    try {
      context = new AudioContextClass();
    } catch {
      return;
    }
  }
  if (context.state === "suspended") context.resume().catch(() => {});
}

/** Two short rising tones, about 0.4 s. Returns true when the sound could start. */
export function chime() {
  if (context === null) unlockSound();
  if (context === null || context.state !== "running") return false;
  const start = context.currentTime + 0.01;
  [
    [880, 0],
    [1320, 0.18],
  ].forEach(([frequency, offset]) => {
    const oscillator = context.createOscillator();
    const gain = context.createGain();
    oscillator.type = "sine";
    oscillator.frequency.value = frequency;
    gain.gain.setValueAtTime(0.0001, start + offset);
    gain.gain.exponentialRampToValueAtTime(0.25, start + offset + 0.02);
    gain.gain.exponentialRampToValueAtTime(0.0001, start + offset + 0.2);
    oscillator.connect(gain).connect(context.destination);
    oscillator.start(start + offset);
    oscillator.stop(start + offset + 0.22);
  });
  return true;
}

let titleTimer = null;
let restingTitle = null;

let flashing = null;

/** Alternate the page's title with `text` (calling it again with the same text changes nothing). */
export function flashTitle(text) {
  if (flashing === text) return;
  flashing = text;
  if (restingTitle === null) restingTitle = document.title;
  clearInterval(titleTimer);
  let on = true;
  document.title = `${text} · ${restingTitle}`;
  titleTimer = setInterval(() => {
    on = !on;
    document.title = on ? `${text} · ${restingTitle}` : restingTitle;
  }, 1000);
}

export function stopTitle() {
  flashing = null;
  clearInterval(titleTimer);
  titleTimer = null;
  if (restingTitle !== null) document.title = restingTitle;
  restingTitle = null;
}
