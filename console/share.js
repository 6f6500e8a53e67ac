// The public share page: `/shared/<token>` shows the project's boxes in
// order with their headliners and favourites, and takes comments. No sign
// in; the token is the only key. Any 404 — unknown, expired, revoked or
// malformed token — shows one and the same "not found" page, with nothing
// of the owner's on it.

import { request } from './api.js';
import { $, announce, fill, formatBytes, formatDate, formatDuration, h, openViewer, reason } from './dom.js';

const AUTHOR_KEY = 'assetbox.commentAuthor';
const main = $('#main');
const token = (() => {
  try {
    return decodeURIComponent(location.pathname.split('/shared/')[1]?.split('/')[0] ?? '');
  } catch {
    return ''; // a malformed %-escape: the same "not found" page
  }
})();
const tokenPath = `/api/shared/${encodeURIComponent(token)}`;

function notFound() {
  document.title = 'Link not found – assetbox';
  fill(main,
    h('section', { class: 'not-found', 'aria-labelledby': 'not-found-title' },
      h('h1', { id: 'not-found-title' }, 'This share link is not available'),
      h('p', {}, 'The link is unknown, has expired or was revoked. Ask the person who sent it for a new one.')));
  main.focus();
}

async function load() {
  if (!token) return notFound();
  let view = null;
  const boxes = [];
  try {
    // The view comes a page of boxes at a time (at most 50).
    let cursor = null;
    do {
      const page = await request(`${tokenPath}/?limit=50${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`, { auth: false });
      view ??= page;
      boxes.push(...page.boxes);
      cursor = page.next_cursor;
    } while (cursor);
  } catch (error) {
    if (error.status === 404) return notFound();
    fill(main, h('p', { class: 'error-text' }, `The shared project cannot be shown right now: ${reason(error)}. Try reloading the page.`));
    return;
  } finally {
    main.removeAttribute('aria-busy');
  }
  document.title = `${view.name} – shared on assetbox`;
  fill(main,
    h('header', {},
      h('h1', {}, view.name),
      h('p', { class: 'hint' }, `${boxes.length} ${boxes.length === 1 ? 'shot' : 'shots'} · shared until ${formatDate(view.expires_at)}`)),
    boxes.length ? boxes.map(shot) : h('p', { class: 'empty' }, 'This project has no boxes yet.'));
}

function facts(asset) {
  return [
    asset.width && asset.height ? `${asset.width}×${asset.height}` : null,
    asset.duration_ms != null ? formatDuration(asset.duration_ms) : null,
    asset.size ? formatBytes(asset.size) : null,
  ].filter(Boolean).join(' · ');
}

/** A headliner shown large, or a favourite as a thumbnail that opens larger; videos play. */
function figure(asset, label, large) {
  let media;
  if (asset.asset_type === 'VIDEO') {
    media = h('video', { src: asset.file_url, poster: asset.thumbnail_url, controls: true, preload: 'metadata', 'aria-label': label });
  } else if (large) {
    // The 512 px thumbnail where it is enough (phones), the original beyond.
    const srcset = asset.thumbnail_url && asset.width > 512 ? `${asset.thumbnail_url} 512w, ${asset.file_url} ${asset.width}w` : null;
    media = h('img', { src: asset.file_url, srcset, sizes: srcset && '(max-width: 44rem) 100vw, 60vw', alt: label });
  } else {
    media = h('button', { type: 'button', class: 'thumb', onclick: () => openViewer({ type: 'IMAGE', src: asset.file_url, label }) },
      h('span', { class: 'sr-only' }, 'View larger: '),
      h('img', { src: asset.thumbnail_url ?? asset.file_url, alt: label, loading: 'lazy' }));
  }
  const caption = [asset.prompt_text, facts(asset)].filter(Boolean).join(' — ');
  return h('figure', {}, media, caption && h('figcaption', {}, caption));
}

function shot(box, index) {
  const headingId = `shot-${box.id}`;
  const favourites = box.favorites.filter((f) => f.id !== box.headliner?.id);
  return h('section', { class: 'shot', 'aria-labelledby': headingId },
    h('h2', { id: headingId }, `${index + 1}. ${box.name}`),
    h('div', { class: 'shot-media' },
      h('div', { class: 'headliner' },
        box.headliner
          ? figure(box.headliner, `Headliner of ${box.name}`, true)
          : h('p', { class: 'empty' }, 'No headliner chosen yet.')),
      h('div', {},
        h('h3', {}, 'Favourites'),
        favourites.length
          ? h('ul', { class: 'favorites plain' },
              favourites.map((asset, i) => h('li', {}, figure(asset, `Favourite ${i + 1} of ${box.name}`, false))))
          : h('p', { class: 'empty' }, 'No other favourites.'))),
    commentForm(box));
}

function commentForm(box) {
  const ids = { author: `author-${box.id}`, text: `text-${box.id}`, heading: `comment-${box.id}` };
  const sent = h('p', { class: 'hint' });
  const form = h('form', { class: 'comment-form', 'aria-labelledby': ids.heading },
    h('h3', { id: ids.heading }, `Comment on ${box.name}`),
    h('label', { for: ids.author }, 'Your name'),
    h('input', { id: ids.author, name: 'author', required: true, maxlength: 80, autocomplete: 'name',
      value: localStorage.getItem(AUTHOR_KEY) ?? '' }),
    h('label', { for: ids.text }, 'Your comment'),
    h('textarea', { id: ids.text, name: 'text', required: true, maxlength: 2000, rows: 3 }),
    h('div', {}, h('button', { type: 'submit', class: 'primary' }, 'Send comment')),
    sent);
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const button = form.querySelector('button');
    button.disabled = true;
    sent.textContent = '';
    try {
      await request(`${tokenPath}/boxes/${encodeURIComponent(box.id)}/comments/`, {
        method: 'POST',
        auth: false,
        body: { author_name: form.author.value.trim(), text: form.text.value },
      });
      localStorage.setItem(AUTHOR_KEY, form.author.value.trim());
      form.text.value = '';
      sent.textContent = 'Sent. Thank you!';
      announce(`Your comment on ${box.name} was sent.`);
    } catch (error) {
      if (error.status === 404) return notFound(); // revoked or expired meanwhile
      const why = error.status === 429
        ? `too many comments on this link for now${error.retryAfter ? `; try again in ${Math.ceil(error.retryAfter / 60)} min` : ''}`
        : reason(error);
      announce(`Your comment was not sent: ${why}.`, { error: true });
    } finally {
      button.disabled = false;
    }
  });
  return form;
}

load();
