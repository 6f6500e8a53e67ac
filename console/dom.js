// DOM helpers both pages share. Everything is built with createElement and
// textContent, never innerHTML: names, prompts and comments are written by
// other people (a share page's visitors write comments the owner reads), so
// none of it may ever become markup.

/** An element: `h('button', {class: 'x', onclick}, 'text', child)`. */
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value == null || value === false) continue;
    if (key.startsWith('on')) el.addEventListener(key.slice(2), value);
    else if (key === 'class') el.className = value;
    else if (key === 'dataset') Object.assign(el.dataset, value);
    // Properties, not attributes: they reflect what the user changed.
    else if (key === 'value' || key === 'checked' || key === 'selected') el[key] = value;
    else el.setAttribute(key, value === true ? '' : String(value));
  }
  el.append(...children.flat(Infinity).filter((c) => c != null && c !== false));
  return el;
}

/** Replaces an element's children. */
export function fill(el, ...children) {
  el.replaceChildren(...children.flat(Infinity).filter((c) => c != null && c !== false));
  return el;
}

export const $ = (selector, root = document) => root.querySelector(selector);

const units = ['bytes', 'KB', 'MB', 'GB', 'TB'];

/** 12.6 MB — decimal units, as file managers show sizes. */
export function formatBytes(bytes) {
  if (!Number.isFinite(bytes)) return '';
  let value = bytes;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit += 1;
  }
  return unit === 0 ? `${value} bytes` : `${value.toFixed(value < 10 ? 1 : 0)} ${units[unit]}`;
}

/** 1:05 or 0:02.5 */
export function formatDuration(ms) {
  const seconds = ms / 1000;
  const whole = Math.floor(seconds % 60);
  const tenths = Math.round((seconds % 1) * 10) % 10;
  return `${Math.floor(seconds / 60)}:${String(whole).padStart(2, '0')}${seconds < 10 && tenths ? `.${tenths}` : ''}`;
}

const dateFormat = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });
export const formatDate = (iso) => (iso ? dateFormat.format(new Date(iso)) : '');

/**
 * Status messages go to a polite live region, errors to an alert: screen
 * readers hear both, sighted users see the last one. Setting the same text
 * twice is still announced (cleared first).
 */
export function announce(message, { error = false } = {}) {
  const status = document.getElementById('status');
  const alert = document.getElementById('alert');
  const region = error ? alert : status;
  (error ? status : alert).textContent = '';
  region.textContent = '';
  // The next frame, so assistive technology sees a change.
  requestAnimationFrame(() => {
    region.textContent = message;
  });
}

/** The API's reason for an error (see api.js), or the error's message. */
export const reason = (error) => error?.describe?.() ?? error?.message ?? String(error);

/**
 * Opens a native modal <dialog> of the page and resolves with the button
 * value that closed it ('' for Escape). showModal() makes the rest of the
 * page inert (focus stays inside), Escape closes it, and the browser moves
 * focus back to where it was.
 */
export function openDialog(dialog) {
  dialog.returnValue = '';
  dialog.showModal();
  return new Promise((resolve) => {
    dialog.addEventListener('close', () => resolve(dialog.returnValue), { once: true });
  });
}

// Cancel buttons are not submit buttons: Enter in a dialog's field submits
// with its first *submit* button (Save), never Cancel.
document.addEventListener('click', (event) => {
  const button = event.target.closest?.('dialog [data-close]');
  if (button) button.closest('dialog').close(button.value);
});

/** Asks before something that cannot be undone. */
export async function confirmAction(text, action) {
  const dialog = document.getElementById('confirm-dialog');
  $('.dialog-text', dialog).textContent = text;
  $('button[value="ok"]', dialog).textContent = action;
  return (await openDialog(dialog)) === 'ok';
}

let viewer = null;

/** The full-size picture or the video, in a dialog (thumbnails are small). */
export function openViewer({ type, src, label }) {
  viewer ??= document.body.appendChild(
    h('dialog', { class: 'viewer', 'aria-labelledby': 'viewer-title' },
      h('form', { method: 'dialog', class: 'viewer-head' },
        h('h2', { id: 'viewer-title', class: 'viewer-title' }),
        h('button', { value: 'close' }, 'Close')),
      h('div', { class: 'viewer-body' })),
  );
  const dialog = viewer;
  $('.viewer-title', dialog).textContent = label;
  const media =
    type === 'VIDEO'
      ? h('video', { src, controls: true, autoplay: true, 'aria-label': label })
      : h('img', { src, alt: label });
  fill($('.viewer-body', dialog), media);
  // Closing stops a playing video: its element goes away.
  openDialog(dialog).then(() => fill($('.viewer-body', dialog)));
}
