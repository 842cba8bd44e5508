// @ts-check
// The beep for new alarms (Web Audio, no sound file) and the header's switch.

import { state } from './store.js';

/** @type {AudioContext | null} */
let audio = null;

/**
 * Beeps `times` times, when the sound is on.
 * @param {number} times
 */
export function beep(times) {
  if (!state.sound) return;
  try {
    audio = audio || new (window.AudioContext || /** @type {{ webkitAudioContext: typeof AudioContext }} */ (/** @type {unknown} */ (window)).webkitAudioContext)();
    if (audio.state === 'suspended') audio.resume();
    for (let i = 0; i < times; i++) {
      const o = audio.createOscillator();
      const g = audio.createGain();
      o.type = 'square';
      o.frequency.value = 880;
      g.gain.value = 0.08;
      o.connect(g).connect(audio.destination);
      const start = audio.currentTime + i * 0.35;
      o.start(start);
      o.stop(start + 0.2);
    }
  } catch (e) { /* no audio device: the red card is the alarm */ }
}

/** Switches the sound on or off, and remembers it. */
export function toggleSound() {
  state.sound = !state.sound;
  localStorage.setItem('gw.sound', state.sound ? 'on' : 'off');
}
