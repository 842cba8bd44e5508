// @ts-check
// The guards' console, as native ES modules with no build step: this file is
// the URL the page loads (/assets/app.js); everything is under js/ (main.js
// first).
import './js/main.js';
