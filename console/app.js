// The web console: sign in, projects, ordered boxes, uploads, the asset
// grid with live status, generation, share links, comments and export.
// The URL's hash says where the user is (#/p/<project>/b/<box>), so a
// reload — e.g. to resume an upload — comes back to the same box.

import { config, currentSession, id, listAll, login, logout, onSession, register, request } from './api.js';
import { $, announce, confirmAction, fill, formatBytes, formatDate, formatDuration, h, openDialog, openViewer, reason } from './dom.js';
import { LiveStatus } from './live.js';
import { paramValues, schemaFields } from './params.js';
import { abortUpload, discardUpload, unfinishedUploads, uploadFile, uploadKey } from './upload.js';

const state = {
  projects: [],
  project: null,
  boxes: [],
  box: null,
  assets: [],
  cursor: null,
  models: null,
  comments: [],
  newLink: null,
  uploads: new Map(),
};

const STATUS_WORDS = { PENDING: 'Pending', PROCESSING: 'Processing', COMPLETED: 'Completed', FAILED: 'Failed' };
const IN_FLIGHT = new Set(['PENDING', 'PROCESSING']);
const plural = (n, one, many) => `${n} ${n === 1 ? one : many}`;

/** Runs a user action; a failure is announced with what failed and the API's reason. */
const act = (what, fn) => async (...args) => {
  try {
    await fn(...args);
  } catch (error) {
    announce(`${what}: ${reason(error)}`, { error: true });
  }
};

// --- where the user is ---------------------------------------------------

function routeParts() {
  const [, project, box] = location.hash.match(/^#\/p\/([^/]+)(?:\/b\/([^/]+))?/) ?? [];
  return { project: project ?? null, box: box ?? null };
}

const projectHref = (project) => `#/p/${project}`;
const boxHref = (box) => `#/p/${state.project.id}/b/${box}`;

let routing = Promise.resolve();
/** Follows the hash; one step at a time, so quick clicks do not interleave. */
function route() {
  routing = routing.then(async () => {
    if (!currentSession()) return showAuth();
    await showApp();
    const wanted = routeParts();
    if (wanted.project !== (state.project?.id ?? null)) await openProject(wanted.project);
    if (state.project && wanted.box !== (state.box?.id ?? null)) await openBox(wanted.box);
  }).catch((error) => announce(reason(error), { error: true }));
  return routing;
}

// --- signing in ----------------------------------------------------------

function showAuth() {
  $('#session-bar').hidden = true;
  $('#app-view').hidden = true;
  $('#auth-view').hidden = false;
  state.project = null;
  state.box = null;
  live.stop();
  document.title = 'Sign in – assetbox';
}

let appShown = false;
async function showApp() {
  $('#auth-view').hidden = true;
  $('#app-view').hidden = false;
  $('#session-bar').hidden = false;
  $('#who').textContent = currentSession().email;
  if (!appShown) {
    appShown = true;
    await loadProjects();
  }
}

$('#auth-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  const form = event.target;
  const email = form.email.value.trim();
  const password = form.password.value;
  const creating = event.submitter?.value === 'register';
  form.setAttribute('aria-busy', 'true');
  try {
    await (creating ? register(email, password) : login(email, password));
    form.reset();
    announce(creating ? `Account created; signed in as ${email}.` : `Signed in as ${email}.`);
    await route();
    $('#projects-heading').focus?.();
  } catch (error) {
    const why = error.status === 401 ? 'wrong email or password' : reason(error);
    announce(`${creating ? 'Could not create the account' : 'Could not sign in'}: ${why}`, { error: true });
  } finally {
    form.removeAttribute('aria-busy');
  }
});

$('#logout').addEventListener('click', async () => {
  try {
    await logout();
  } catch {
    // Signed out locally anyway.
  }
});

onSession((session, why) => {
  if (session) return;
  appShown = false;
  state.projects = [];
  if (why === 'expired') announce('Your session has expired: please sign in again.', { error: true });
  if (why === 'signed-out') announce('Signed out.');
  showAuth();
  $('#auth-email').focus();
});

// --- projects ------------------------------------------------------------

async function loadProjects() {
  state.projects = await listAll('/api/projects/');
  renderProjects();
}

function renderProjects() {
  const focused = document.activeElement?.closest('#project-list li')?.dataset.id;
  fill(
    $('#project-list'),
    state.projects.length
      ? state.projects.map((project) =>
          h('li', { dataset: { id: project.id } },
            h('a', { href: projectHref(project.id), 'aria-current': project.id === state.project?.id ? 'page' : null }, project.name),
            h('span', { class: 'count' }, plural(project.boxes_count, 'box', 'boxes')),
          ),
        )
      : h('li', { class: 'empty' }, 'No projects yet.'),
  );
  if (focused) $(`#project-list li[data-id="${CSS.escape(focused)}"] a`)?.focus();
}

async function openProject(projectId) {
  state.project = null;
  state.box = null;
  state.newLink = null;
  $('#new-link').hidden = true;
  if (!projectId) {
    $('#project-view').hidden = true;
    $('#no-project').hidden = false;
    live.follow(null);
    renderProjects();
    document.title = 'assetbox console';
    return;
  }
  let project;
  let boxes;
  try {
    [project, boxes] = await Promise.all([
      request(`/api/projects/${id(projectId)}/`),
      listAll(`/api/projects/${id(projectId)}/boxes/`),
    ]);
  } catch (error) {
    announce(`Could not open the project: ${reason(error)}`, { error: true });
    location.hash = '';
    return;
  }
  state.project = project;
  state.boxes = boxes;
  $('#no-project').hidden = true;
  $('#project-view').hidden = false;
  $('#project-title').textContent = project.name;
  document.title = `${project.name} – assetbox`;
  renderProjects();
  renderBoxes();
  live.follow(project.id);
  await loadLinks();
}

function replaceProject(project) {
  state.projects = state.projects.map((p) => (p.id === project.id ? project : p));
  if (state.project?.id === project.id) {
    state.project = project;
    $('#project-title').textContent = project.name;
  }
  renderProjects();
}

$('#new-project').addEventListener('submit', act('Could not create the project', async (event) => {
  event.preventDefault();
  const input = event.target.name;
  const project = await request('/api/projects/', { method: 'POST', body: { name: input.value.trim() } });
  input.value = '';
  state.projects.push(project);
  renderProjects();
  announce(`Project ${project.name} created.`);
  location.hash = projectHref(project.id);
}));

/** Asks for a new name in a dialog; null when cancelled. */
async function askName(title, current) {
  const dialog = $('#name-dialog');
  $('#name-title').textContent = title;
  $('#name-input').value = current;
  const closed = openDialog(dialog);
  $('#name-input').select(); // typing replaces the old name
  const answer = await closed;
  const name = $('#name-input').value.trim();
  return answer === 'ok' && name && name !== current ? name : null;
}

$('#rename-project').addEventListener('click', act('Could not rename the project', async () => {
  const name = await askName('Rename project', state.project.name);
  if (!name) return;
  replaceProject(await request(`/api/projects/${id(state.project.id)}/`, { method: 'PATCH', body: { name } }));
  announce(`Project renamed to ${name}.`);
}));

$('#delete-project').addEventListener('click', act('Could not delete the project', async () => {
  const project = state.project;
  const sure = await confirmAction(
    `Delete the project “${project.name}” with its ${plural(state.boxes.length, 'box', 'boxes')} and all their assets? This cannot be undone.`,
    'Delete project',
  );
  if (!sure) return;
  await request(`/api/projects/${id(project.id)}/`, { method: 'DELETE' });
  state.projects = state.projects.filter((p) => p.id !== project.id);
  announce(`Project ${project.name} deleted.`);
  location.hash = '';
  $('#projects-heading').focus();
}));

$('#export-project').addEventListener('click', act('Could not export the storyboard', async (event) => {
  const button = event.currentTarget;
  button.disabled = true;
  announce('Preparing the storyboard…');
  try {
    const out = await request(`/api/projects/${id(state.project.id)}/export/?format=docx`);
    // A presigned URL that answers as an attachment: the browser downloads it.
    const link = h('a', { href: out.url, download: out.file_name, hidden: true });
    document.body.append(link);
    link.click();
    link.remove();
    announce(`Downloading ${out.file_name} (${plural(out.boxes, 'box', 'boxes')}).`);
  } finally {
    button.disabled = false;
  }
}));

// --- boxes: list, order ----------------------------------------------------

/** Re-renders the box list; focus goes back to the same control of the same box (`focus` = [box id, role]). */
function renderBoxes(focus = focusInBoxes()) {
  const list = $('#box-list');
  const last = state.boxes.length - 1;
  fill(
    list,
    state.boxes.length
      ? state.boxes.map((box, index) =>
          h('li', { class: 'box-item', draggable: 'true', dataset: { id: box.id }, 'aria-current': box.id === state.box?.id ? 'true' : null },
            h('span', { class: 'grip', 'aria-hidden': 'true' }, '⠿'),
            h('a', { href: boxHref(box.id), class: 'box-link', draggable: 'false', dataset: { role: 'open' },
              'aria-current': box.id === state.box?.id ? 'page' : null },
              h('span', { class: 'position', 'aria-hidden': 'true' }, `${index + 1}.`), ` ${box.name}`),
            h('span', { class: 'count' }, plural(box.assets_count, 'asset', 'assets')),
            h('span', { class: 'box-actions' },
              h('button', { type: 'button', dataset: { role: 'up' }, 'aria-label': `Move ${box.name} up`, disabled: index === 0,
                onclick: () => moveBox(box.id, index - 1, 'up') }, '↑'),
              h('button', { type: 'button', dataset: { role: 'down' }, 'aria-label': `Move ${box.name} down`, disabled: index === last,
                onclick: () => moveBox(box.id, index + 1, 'down') }, '↓'),
              h('button', { type: 'button', dataset: { role: 'rename' }, 'aria-label': `Rename ${box.name}`, onclick: () => renameBox(box) }, 'Rename'),
              h('button', { type: 'button', class: 'danger', 'aria-label': `Delete ${box.name}`, onclick: () => deleteBox(box) }, 'Delete'),
            ),
          ),
        )
      : h('li', { class: 'empty' }, 'No boxes yet.'),
  );
  if (focus) {
    const [boxId, role] = focus;
    const item = list.querySelector(`li[data-id="${CSS.escape(boxId)}"]`);
    const target = item?.querySelector(`[data-role="${role}"]:not(:disabled)`) ?? item?.querySelector('[data-role="open"]');
    target?.focus();
  }
}

/** [box id, control] of the focused control in the box list, to focus it again after a re-render. */
function focusInBoxes() {
  const item = document.activeElement?.closest('#box-list li[data-id]');
  return item ? [item.dataset.id, document.activeElement.dataset.role ?? 'open'] : null;
}

let reorders = 0;
let savingOrder = 0; // saves in flight: counts refreshed meanwhile would undo a move
/**
 * Moves a box to `to` (0-based) at once on screen, then saves the whole
 * order (the API's reorder takes every box). Only the newest save's
 * answer is applied; a refused one reloads the order the API holds.
 */
async function moveBox(boxId, to, focusRole = 'open') {
  const from = state.boxes.findIndex((b) => b.id === boxId);
  if (from < 0 || to < 0 || to >= state.boxes.length || from === to) return;
  const order = [...state.boxes];
  const [moved] = order.splice(from, 1);
  order.splice(to, 0, moved);
  state.boxes = order;
  renderBoxes([boxId, focusRole]);
  const mine = ++reorders;
  const project = state.project.id;
  savingOrder += 1;
  try {
    const saved = await request(`/api/projects/${id(project)}/boxes/reorder/`, {
      method: 'POST',
      body: { box_ids: order.map((b) => b.id) },
    });
    if (mine === reorders && state.project?.id === project) {
      state.boxes = saved.results;
      renderBoxes(focusInBoxes());
    }
    announce(`${moved.name} moved to position ${to + 1} of ${order.length}.`);
  } catch (error) {
    announce(`Could not move ${moved.name}: ${reason(error)}`, { error: true });
    if (state.project?.id === project) {
      state.boxes = await listAll(`/api/projects/${id(project)}/boxes/`);
      renderBoxes();
    }
  } finally {
    savingOrder -= 1;
  }
}

const boxList = $('#box-list');
// Alt+↑ / Alt+↓ anywhere in a box's row moves it; focus stays on the same control.
boxList.addEventListener('keydown', (event) => {
  if (!event.altKey || (event.key !== 'ArrowUp' && event.key !== 'ArrowDown')) return;
  const item = event.target.closest('li[data-id]');
  if (!item) return;
  event.preventDefault();
  const index = state.boxes.findIndex((b) => b.id === item.dataset.id);
  moveBox(item.dataset.id, index + (event.key === 'ArrowUp' ? -1 : 1), event.target.dataset.role ?? 'open');
});

// HTML5 drag and drop: a box dropped on another takes that box's place.
let dragged = null;
boxList.addEventListener('dragstart', (event) => {
  const item = event.target.closest?.('li[data-id]');
  if (!item) return;
  dragged = item.dataset.id;
  event.dataTransfer.effectAllowed = 'move';
  event.dataTransfer.setData('text/plain', item.textContent);
  item.classList.add('dragging');
});
boxList.addEventListener('dragover', (event) => {
  const item = event.target.closest?.('li[data-id]');
  if (!dragged || !item) return;
  event.preventDefault();
  event.dataTransfer.dropEffect = 'move';
  for (const other of boxList.querySelectorAll('.drop-target')) if (other !== item) other.classList.remove('drop-target');
  if (item.dataset.id !== dragged) item.classList.add('drop-target');
});
boxList.addEventListener('drop', (event) => {
  const item = event.target.closest?.('li[data-id]');
  if (!dragged || !item) return;
  event.preventDefault();
  const to = state.boxes.findIndex((b) => b.id === item.dataset.id);
  const box = dragged;
  dragged = null;
  moveBox(box, to);
});
boxList.addEventListener('dragend', () => {
  dragged = null;
  for (const item of boxList.querySelectorAll('.dragging, .drop-target')) item.classList.remove('dragging', 'drop-target');
});

$('#new-box').addEventListener('submit', act('Could not add the box', async (event) => {
  event.preventDefault();
  const input = event.target.name;
  const box = await request('/api/boxes/', { method: 'POST', body: { project: state.project.id, name: input.value.trim() } });
  input.value = '';
  state.boxes.push(box);
  renderBoxes();
  bumpBoxCount(1);
  announce(`Box ${box.name} added at position ${state.boxes.length}.`);
}));

function bumpBoxCount(by) {
  const project = state.projects.find((p) => p.id === state.project?.id);
  if (project) project.boxes_count += by;
  renderProjects();
}

function replaceBox(box) {
  state.boxes = state.boxes.map((b) => (b.id === box.id ? box : b));
  if (state.box?.id === box.id) {
    state.box = box;
    $('#box-title').textContent = box.name;
  }
  renderBoxes();
}

const renameBox = act('Could not rename the box', async (box) => {
  const name = await askName('Rename box', box.name);
  if (!name) return;
  replaceBox(await request(`/api/boxes/${id(box.id)}/`, { method: 'PATCH', body: { name } }));
  announce(`Box renamed to ${name}.`);
});

const deleteBox = act('Could not delete the box', async (box) => {
  const sure = await confirmAction(
    `Delete the box “${box.name}” with its ${plural(box.assets_count, 'asset', 'assets')} and comments? This cannot be undone.`,
    'Delete box',
  );
  if (!sure) return;
  await request(`/api/boxes/${id(box.id)}/`, { method: 'DELETE' });
  state.boxes = state.boxes.filter((b) => b.id !== box.id);
  bumpBoxCount(-1);
  announce(`Box ${box.name} deleted.`);
  if (state.box?.id === box.id) location.hash = projectHref(state.project.id);
  renderBoxes();
  $('#boxes-heading').focus();
});

// --- one box ---------------------------------------------------------------

async function openBox(boxId) {
  state.box = state.boxes.find((b) => b.id === boxId) ?? null;
  state.assets = [];
  state.comments = [];
  renderBoxes();
  $('#box-view').hidden = !state.box;
  $('#no-box').hidden = Boolean(state.box);
  if (!state.box) return;
  $('#box-title').textContent = state.box.name;
  $('#filters').search.value = '';
  renderUploads();
  renderUnfinished();
  await Promise.all([
    loadAssets().catch((e) => announce(`Could not load the assets: ${reason(e)}`, { error: true })),
    loadComments().catch((e) => announce(`Could not load the comments: ${reason(e)}`, { error: true })),
    loadModels().catch((e) => announce(`Could not load the AI models: ${reason(e)}`, { error: true })),
  ]);
}

// --- assets ----------------------------------------------------------------

function filters() {
  const form = $('#filters');
  return {
    asset_type: form.asset_type.value,
    status: form.status.value,
    is_favorite: form.is_favorite.checked,
    search: form.search.value.trim().toLowerCase(),
  };
}

/**
 * Type, status and favourites filter on the server; the search runs here
 * over the name and the prompt (the API's `search` matches prompts only).
 */
async function loadAssets({ more = false } = {}) {
  const box = state.box.id;
  const f = filters();
  const query = new URLSearchParams({ box, limit: '50' });
  if (f.asset_type) query.set('asset_type', f.asset_type);
  if (f.status) query.set('status', f.status);
  if (f.is_favorite) query.set('is_favorite', 'true');
  if (more && state.cursor) query.set('cursor', state.cursor);
  const page = await request(`/api/assets/?${query}`);
  if (state.box?.id !== box) return;
  state.assets = more ? [...state.assets, ...page.results] : page.results;
  state.cursor = page.next_cursor;
  renderAssets();
}

function matches(asset, f = filters()) {
  if (f.asset_type && asset.asset_type !== f.asset_type) return false;
  if (f.status && asset.status !== f.status) return false;
  if (f.is_favorite && !asset.is_favorite) return false;
  if (f.search) {
    const text = `${asset.name} ${asset.prompt_text ?? ''}`.toLowerCase();
    if (!text.includes(f.search)) return false;
  }
  return true;
}

const typeWord = (asset) => (asset.asset_type === 'VIDEO' ? 'Video' : 'Image');

/**
 * A generation is named "generation", then "generation-<id>.<ext>" once
 * stored: its prompt says more. Uploads and renamed assets show their name.
 */
const GENERATED_NAME = /^generation(-[0-9A-Z]{26}\.\w+)?$/;
const ownName = (asset) =>
  asset.name && !(asset.source_type !== 'UPLOADED' && GENERATED_NAME.test(asset.name)) ? asset.name : null;

function displayName(asset) {
  const name = ownName(asset);
  if (name) return name;
  if (asset.prompt_text) return asset.prompt_text.length > 60 ? `${asset.prompt_text.slice(0, 57)}…` : asset.prompt_text;
  return `${typeWord(asset)} ${asset.id.slice(-6)}`;
}

function renderAssets() {
  const f = filters();
  const shown = state.assets.filter((a) => matches(a, f));
  const filtered = f.asset_type || f.status || f.is_favorite || f.search;
  fill(
    $('#asset-grid'),
    shown.length
      ? shown.map(assetCard)
      : h('li', { class: 'empty' }, filtered ? 'No asset matches these filters.' : 'No assets yet: upload or generate one.'),
  );
  $('#more-assets').hidden = !state.cursor;
}

function mediaOf(asset, name) {
  const key = `${asset.id}:${asset.status}:${asset.thumbnail_url ? 't' : ''}`;
  if (asset.status !== 'COMPLETED' || !asset.file_url) {
    return h('div', { class: 'media placeholder', dataset: { key }, 'aria-hidden': 'true' },
      asset.status === 'FAILED' ? '⚠' : h('span', { class: 'spinner' }));
  }
  if (asset.asset_type === 'VIDEO') {
    return h('video', { class: 'media', dataset: { key }, src: asset.file_url, poster: asset.thumbnail_url, controls: true,
      preload: 'metadata', 'aria-label': name });
  }
  return h('button', { type: 'button', class: 'media thumb', dataset: { key },
    onclick: () => openViewer({ type: 'IMAGE', src: asset.file_url, label: name }) },
    h('span', { class: 'sr-only' }, 'View larger: '),
    h('img', { src: asset.thumbnail_url ?? asset.file_url, alt: name, loading: 'lazy' }));
}

function assetCard(asset) {
  const name = displayName(asset);
  const titleId = `asset-title-${asset.id}`;
  const headliner = state.box?.headliner_asset === asset.id;
  const facts = [
    typeWord(asset),
    asset.size ? formatBytes(asset.size) : null,
    asset.width && asset.height ? `${asset.width}×${asset.height}` : null,
    asset.duration_ms != null ? formatDuration(asset.duration_ms) : null,
  ].filter(Boolean);
  const job = asset.generation;
  return h('li', { dataset: { id: asset.id } },
    h('article', { class: `card status-${asset.status.toLowerCase()}`, 'aria-labelledby': titleId },
      mediaOf(asset, name),
      h('div', { class: 'card-body' },
        h('h5', { id: titleId, class: 'card-title' }, name),
        h('p', { class: 'meta' }, facts.join(' · ')),
        h('p', { class: 'badges' },
          h('span', { class: `badge badge-${asset.status.toLowerCase()}` }, h('span', { class: 'sr-only' }, 'Status: '), STATUS_WORDS[asset.status]),
          headliner && h('span', { class: 'badge badge-headliner' }, 'Headliner'),
          job && IN_FLIGHT.has(asset.status) && h('span', { class: 'job' }, `provider: ${job.state}`),
        ),
        asset.status === 'FAILED' && h('p', { class: 'error-text' }, asset.error_message ?? 'Failed.'),
        asset.prompt_text && ownName(asset) && h('p', { class: 'prompt' }, asset.prompt_text),
        h('div', { class: 'card-actions' },
          h('button', { type: 'button', dataset: { role: 'favourite' }, 'aria-pressed': String(asset.is_favorite),
            onclick: () => toggleFavourite(asset) },
            h('span', { 'aria-hidden': 'true' }, asset.is_favorite ? '★ ' : '☆ '), 'Favourite'),
          h('button', { type: 'button', dataset: { role: 'headliner' }, 'aria-pressed': String(headliner),
            onclick: () => toggleHeadliner(asset) }, 'Headliner'),
          h('button', { type: 'button', class: 'danger', dataset: { role: 'delete' }, 'aria-label': `Delete ${name}`,
            onclick: () => deleteAsset(asset) }, 'Delete'),
        ),
      ),
    ),
  );
}

/**
 * Puts a fresh copy of an asset on screen: its card alone is replaced (focus
 * and a playing video are kept when its media did not change), a new one
 * is added first, one that no longer matches the filters goes.
 */
function upsertAsset(asset) {
  if (asset.box !== state.box?.id) return removeAsset(asset.id);
  const index = state.assets.findIndex((a) => a.id === asset.id);
  const before = index >= 0 ? state.assets[index] : null;
  if (before && before.updated_at > asset.updated_at) return; // an older read
  if (index >= 0) state.assets[index] = asset;
  else state.assets.unshift(asset);
  if (before && before.status !== asset.status) {
    if (asset.asset_type === 'IMAGE' && asset.status === 'COMPLETED') renderParentPicker().catch(() => {});
    if (asset.status === 'COMPLETED') announce(`${displayName(asset)} is ready.`);
    if (asset.status === 'FAILED') announce(`${displayName(asset)} failed: ${asset.error_message ?? 'no reason given'}`, { error: true });
  }
  const grid = $('#asset-grid');
  const old = grid.querySelector(`li[data-id="${CSS.escape(asset.id)}"]`);
  if (!matches(asset)) {
    old?.remove();
    return;
  }
  if (!old) return renderAssets();
  const card = assetCard(asset);
  const oldMedia = old.querySelector('.media');
  const newMedia = card.querySelector('.media');
  if (oldMedia && newMedia && oldMedia.dataset.key === newMedia.dataset.key) newMedia.replaceWith(oldMedia);
  const role = old.contains(document.activeElement) ? document.activeElement.dataset.role : null;
  old.replaceWith(card);
  if (role) card.querySelector(`[data-role="${role}"]`)?.focus();
}

function removeAsset(assetId) {
  const before = state.assets.length;
  state.assets = state.assets.filter((a) => a.id !== assetId);
  if (state.assets.length !== before) {
    renderAssets();
    renderParentPicker().catch(() => {});
  }
}

async function refreshAsset(assetId) {
  try {
    upsertAsset(await request(`/api/assets/${id(assetId)}/`));
  } catch (error) {
    if (error.status === 404) removeAsset(assetId);
  }
}

const toggleFavourite = act('Could not change the favourite', async (asset) => {
  const updated = await request(`/api/assets/${id(asset.id)}/favorite/`, { method: 'POST' });
  upsertAsset(updated);
  announce(updated.is_favorite ? `${displayName(updated)} is a favourite.` : `${displayName(updated)} is no longer a favourite.`);
});

const toggleHeadliner = act('Could not change the headliner', async (asset) => {
  const clear = state.box.headliner_asset === asset.id;
  const box = await request(`/api/boxes/${id(state.box.id)}/`, {
    method: 'PATCH',
    body: { headliner_asset: clear ? null : asset.id },
  });
  const focused = document.activeElement?.dataset.role === 'headliner' ? asset.id : null;
  replaceBox(box);
  renderAssets();
  if (focused) $(`#asset-grid li[data-id="${CSS.escape(focused)}"] [data-role="headliner"]`)?.focus();
  announce(clear ? `${box.name} has no headliner now.` : `${displayName(asset)} is the headliner of ${box.name}.`);
});

const deleteAsset = act('Could not delete the asset', async (asset) => {
  const name = displayName(asset);
  if (!(await confirmAction(`Delete “${name}”? Its file is deleted too.`, 'Delete asset'))) return;
  await request(`/api/assets/${id(asset.id)}/`, { method: 'DELETE' });
  removeAsset(asset.id);
  announce(`${name} deleted.`);
  $('#assets-heading').focus();
});

// Filters: the server's reload at once, the search as one types.
$('#filters').addEventListener('change', act('Could not filter', async (event) => {
  if (event.target.name !== 'search') await loadAssets();
}));
$('#filters').addEventListener('input', (event) => {
  if (event.target.name === 'search') renderAssets();
});
$('#filters').addEventListener('submit', (event) => event.preventDefault());
$('#more-assets').addEventListener('click', act('Could not load more', () => loadAssets({ more: true })));

// --- live status, and polling when it is not available ----------------------

const live = new LiveStatus({
  onEvent: (event) => {
    if (event.type !== 'asset_changed' && event.project === state.project?.id) refreshBoxCounts();
    if (event.box !== state.box?.id) return removeAsset(event.asset_id);
    if (event.type === 'asset_deleted') return removeAsset(event.asset_id);
    refreshAsset(event.asset_id);
  },
  onMode: (mode) => {
    const badge = $('#live-state');
    badge.textContent = { live: 'Live', polling: 'Polling', off: '' }[mode];
    badge.className = `live-state live-${mode}`;
    // Subscribed (again): what changed while nobody listened is fetched once.
    if (mode === 'live') pollInFlight();
  },
});

let countsTimer = null;
/** Box asset counts after assets came or went (debounced: uploads come in bursts). */
function refreshBoxCounts() {
  clearTimeout(countsTimer);
  countsTimer = setTimeout(async () => {
    const project = state.project?.id;
    if (!project || dragged) return;
    const boxes = await listAll(`/api/projects/${id(project)}/boxes/`).catch(() => null);
    if (boxes && state.project?.id === project && !savingOrder) {
      state.boxes = boxes;
      if (state.box) state.box = boxes.find((b) => b.id === state.box.id) ?? state.box;
      renderBoxes(focusInBoxes());
    }
  }, 500);
}

function pollInFlight() {
  for (const asset of state.assets.filter((a) => IN_FLIGHT.has(a.status)).slice(0, 20)) refreshAsset(asset.id);
}
// Without the socket, assets in flight are fetched every 3 s.
setInterval(() => {
  if (live.mode !== 'live' && state.box && !document.hidden) pollInFlight();
}, 3000);

// --- uploads ---------------------------------------------------------------

let uploadSeq = 0;

function startUploads(files) {
  if (!state.box || !files.length) return;
  const box = state.box;
  announce(`Uploading ${plural(files.length, 'file', 'files')} to ${box.name}.`);
  for (const file of files) startUpload(file, box);
}

function startUpload(file, box) {
  const key = uploadKey(file, box.id);
  if ([...state.uploads.values()].some((u) => u.key === key && u.state === 'uploading')) {
    announce(`${file.name} is already uploading.`);
    return;
  }
  const row = { seq: ++uploadSeq, key, file, box, sent: 0, state: 'uploading', message: '', controller: new AbortController() };
  state.uploads.set(row.seq, row);
  renderUploads();
  renderUnfinished();
  uploadFile(file, box.id, {
    signal: row.controller.signal,
    onProgress: (sent) => {
      row.sent = sent;
      updateUploadRow(row);
    },
  })
    .then(({ file: record, resumed, partsSent }) => {
      row.state = 'done';
      row.sent = file.size;
      row.message = resumed ? `Resumed: ${plural(partsSent, 'part', 'parts')} sent, the rest were already stored.` : '';
      if (record.asset_id && state.box?.id === box.id) refreshAsset(record.asset_id);
      refreshBoxCounts();
      announce(`${file.name} uploaded to ${box.name}; it is being processed.`);
    })
    .catch((error) => {
      if (error.name === 'AbortError') {
        row.state = 'cancelled';
        abortUpload(file, box.id);
        announce(`Upload of ${file.name} cancelled.`);
      } else {
        row.state = 'failed';
        // What S3 holds stays (see upload.js) unless the API refused the file.
        const resumable = !(error.status >= 400 && error.status < 500);
        row.message = `${reason(error)}${resumable ? '. Pick the same file again to resume.' : ''}`;
        announce(`${file.name} was not uploaded: ${row.message}`, { error: true });
      }
    })
    .finally(() => {
      renderUploads();
      renderUnfinished();
    });
}

const UPLOAD_WORDS = { uploading: 'Uploading', done: 'Uploaded', failed: 'Failed', cancelled: 'Cancelled' };

function uploadRow(row) {
  const progressId = `upload-${row.seq}`;
  return h('li', { class: `upload upload-${row.state}`, dataset: { seq: row.seq } },
    h('label', { for: progressId }, `${UPLOAD_WORDS[row.state]} ${row.file.name} to ${row.box.name}`),
    h('div', { class: 'upload-bar' },
      h('progress', { id: progressId, max: row.file.size || 1, value: row.state === 'done' ? row.file.size || 1 : row.sent }),
      h('span', { class: 'percent', 'aria-hidden': 'true' }, percent(row)),
      row.state === 'uploading'
        ? h('button', { type: 'button', 'aria-label': `Cancel upload of ${row.file.name}`, onclick: () => row.controller.abort() }, 'Cancel')
        : h('button', { type: 'button', 'aria-label': `Dismiss ${row.file.name}`, onclick: () => dismissUpload(row) }, 'Dismiss'),
    ),
    row.message && h('p', { class: row.state === 'failed' ? 'error-text' : 'hint' }, row.message),
  );
}

const percent = (row) => `${Math.floor((100 * (row.state === 'done' ? 1 : row.sent / (row.file.size || 1))))} %`;

function renderUploads() {
  fill($('#upload-list'), [...state.uploads.values()].map(uploadRow));
}

function updateUploadRow(row) {
  const item = $(`#upload-list li[data-seq="${row.seq}"]`);
  if (!item) return;
  $('progress', item).value = row.sent;
  $('.percent', item).textContent = percent(row);
}

function dismissUpload(row) {
  state.uploads.delete(row.seq);
  renderUploads();
  $('#file-input').focus();
}

/** Uploads of this box interrupted earlier (e.g. by a reload) that can be resumed. */
function renderUnfinished() {
  if (!state.box) return;
  const running = new Set([...state.uploads.values()].filter((u) => u.state === 'uploading').map((u) => u.key));
  const waiting = unfinishedUploads(state.box.id).filter((u) => !running.has(u.key));
  fill(
    $('#unfinished'),
    waiting.map((u) =>
      h('li', {},
        h('span', {}, `${u.name} (${formatBytes(u.size)}): ${u.done} of ${u.parts} parts stored. Pick or drop the same file to resume.`),
        h('button', { type: 'button', 'aria-label': `Discard the unfinished upload of ${u.name}`,
          onclick: async () => {
            await discardUpload(u.key);
            renderUnfinished();
            announce(`Unfinished upload of ${u.name} discarded.`);
          } }, 'Discard'),
      ),
    ),
  );
}

const fileInput = $('#file-input');
fileInput.addEventListener('change', () => {
  startUploads([...fileInput.files]);
  fileInput.value = '';
});

const dropzone = $('#dropzone');
const carriesFiles = (event) => event.dataTransfer?.types.includes('Files');
// A file dropped beside the drop zone would make the browser open it in
// place of the console.
for (const type of ['dragover', 'drop']) {
  window.addEventListener(type, (event) => {
    if (!carriesFiles(event) || dropzone.contains(event.target)) return;
    event.preventDefault();
    event.dataTransfer.dropEffect = 'none';
  });
}
dropzone.addEventListener('dragover', (event) => {
  if (!carriesFiles(event)) return;
  event.preventDefault();
  event.dataTransfer.dropEffect = 'copy';
  dropzone.classList.add('over');
});
dropzone.addEventListener('dragleave', () => dropzone.classList.remove('over'));
dropzone.addEventListener('drop', (event) => {
  if (!carriesFiles(event)) return;
  event.preventDefault();
  dropzone.classList.remove('over');
  startUploads([...event.dataTransfer.files]);
});

// --- generation --------------------------------------------------------------

const KIND_WORDS = { image: 'image', video: 'video', img2vid: 'image to video' };

async function loadModels() {
  if (!state.models) {
    state.models = await listAll('/api/ai/models/');
    const select = $('#gen-model');
    fill(select, state.models.length
      ? state.models.map((m) => h('option', { value: m.id }, `${m.name} (${KIND_WORDS[m.kind] ?? m.kind}, ${m.provider_name})`))
      : h('option', { value: '' }, 'No model is available'));
  }
  await renderModelForm();
}

const selectedModel = () => state.models?.find((m) => m.id === $('#gen-model').value) ?? null;

/** The model's parameters as form fields, from its JSON Schema; the parent picker for image to video. */
async function renderModelForm() {
  const model = selectedModel();
  const fields = schemaFields(model?.params_schema);
  fill($('#gen-params'), h('legend', {}, 'Parameters'), fields.length ? fields : h('p', { class: 'hint' }, 'This model takes no parameters.'));
  await renderParentPicker();
}

/**
 * The source image picker of image-to-video models: every completed image of
 * the box (asked of the API, since the grid's filters may hide them), read
 * again when an image completes or goes, keeping the choice.
 */
async function renderParentPicker() {
  const parent = $('#gen-parent');
  if (selectedModel()?.kind !== 'img2vid' || !state.box) return fill(parent);
  const box = state.box.id;
  const images = await listAll(`/api/assets/?box=${id(box)}&asset_type=IMAGE&status=COMPLETED`);
  if (state.box?.id !== box || selectedModel()?.kind !== 'img2vid') return;
  const chosen = $('#gen-parent-asset')?.value;
  fill(parent,
    h('label', { for: 'gen-parent-asset' }, 'Source image'),
    h('select', { id: 'gen-parent-asset', name: 'parent', required: true },
      images.length
        ? images.map((a) => h('option', { value: a.id, selected: a.id === chosen }, displayName(a)))
        : h('option', { value: '' }, 'No completed image in this box yet')));
}

const newKey = () =>
  crypto.randomUUID?.() ?? [...crypto.getRandomValues(new Uint8Array(16))].map((b) => b.toString(16).padStart(2, '0')).join('');

$('#gen-model').addEventListener('change', act('Could not show the model', renderModelForm));

$('#generate-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  const form = event.target;
  const model = selectedModel();
  if (!model || !state.box) return;
  const submit = form.querySelector('button[type="submit"]');
  try {
    const body = { ai_model: model.id, prompt_text: form.prompt.value, params: paramValues($('#gen-params')) };
    if (form.seed.value !== '') body.seed = Number(form.seed.value);
    if (model.kind === 'img2vid') body.parent_asset = form.parent.value;
    // The same key for a retry of this very request (an unknown outcome
    // must not start a second paid job); a new one once it was answered.
    form.dataset.key ||= newKey();
    submit.disabled = true;
    const asset = await request(`/api/boxes/${id(state.box.id)}/generate/`, {
      method: 'POST',
      body,
      headers: { 'idempotency-key': form.dataset.key },
    });
    delete form.dataset.key;
    upsertAsset(asset);
    refreshBoxCounts();
    announce(`Generation started with ${model.name}: ${displayName(asset)}.`);
  } catch (error) {
    // A refusal ends this request; an unknown outcome (no answer, 5xx),
    // throttling and "this key is in use" (409) keep the key, so the retry
    // cannot start a second paid job.
    if (error.status >= 400 && error.status < 500 && error.status !== 409 && error.status !== 429) {
      delete form.dataset.key;
    }
    const wait = error.retryAfter ? ` Try again in ${error.retryAfter} s.` : '';
    announce(`Could not start the generation: ${reason(error)}.${wait}`, { error: true });
  } finally {
    submit.disabled = false;
  }
});

// --- comments ----------------------------------------------------------------

async function loadComments() {
  const box = state.box.id;
  const comments = await listAll(`/api/boxes/${id(box)}/comments/`);
  if (state.box?.id !== box) return;
  state.comments = comments;
  renderComments();
}

function renderComments() {
  // Unread first, newest first within each.
  const sorted = [...state.comments].sort(
    (a, b) => Number(a.is_read) - Number(b.is_read) || b.created_at.localeCompare(a.created_at),
  );
  const unread = sorted.filter((c) => !c.is_read).length;
  $('#comments-heading').textContent = unread ? `Comments (${unread} unread)` : 'Comments';
  fill(
    $('#comment-list'),
    sorted.length
      ? sorted.map((c) =>
          h('li', { class: c.is_read ? 'comment' : 'comment unread', dataset: { id: c.id } },
            h('article', { 'aria-label': `Comment by ${c.author_name}` },
              h('p', { class: 'comment-head' },
                h('strong', {}, c.author_name), ' · ', h('time', { datetime: c.created_at }, formatDate(c.created_at)),
                !c.is_read && h('span', { class: 'badge badge-unread' }, 'Unread')),
              h('p', { class: 'comment-text' }, c.text),
              h('button', { type: 'button', dataset: { role: 'read' }, onclick: () => setRead(c, !c.is_read) },
                c.is_read ? 'Mark unread' : 'Mark read'),
            ),
          ),
        )
      : h('li', { class: 'empty' }, 'No comments on this box. Share the project to collect some.'),
  );
}

const setRead = act('Could not change the comment', async (comment, isRead) => {
  const updated = await request(`/api/comments/${id(comment.id)}/`, { method: 'PATCH', body: { is_read: isRead } });
  state.comments = state.comments.map((c) => (c.id === updated.id ? updated : c));
  renderComments();
  $(`#comment-list li[data-id="${CSS.escape(updated.id)}"] [data-role="read"]`)?.focus();
  announce(isRead ? `Comment by ${updated.author_name} marked read.` : `Comment by ${updated.author_name} marked unread.`);
});

$('#refresh-comments').addEventListener('click', act('Could not load the comments', async () => {
  await loadComments();
  announce(`${plural(state.comments.length, 'comment', 'comments')}, ${state.comments.filter((c) => !c.is_read).length} unread.`);
}));

// --- share links -------------------------------------------------------------

async function loadLinks() {
  const project = state.project.id;
  const links = await listAll(`/api/projects/${id(project)}/share-links/`).catch((error) => {
    announce(`Could not load the share links: ${reason(error)}`, { error: true });
    return [];
  });
  if (state.project?.id !== project) return;
  fill(
    $('#link-list'),
    links.length
      ? links.map((link) =>
          h('li', {},
            h('span', {}, `Created ${formatDate(link.created_at)}, ${link.active ? 'expires' : 'expired'} ${formatDate(link.expires_at)}`,
              link.id === state.newLink?.id ? ' (the new link above)' : ''),
            h('button', { type: 'button', class: 'danger', 'aria-label': `Revoke the link created ${formatDate(link.created_at)}`,
              onclick: () => revokeLink(link) }, 'Revoke'),
          ),
        )
      : h('li', { class: 'empty' }, 'No share links.'),
  );
}

$('#share-form').addEventListener('submit', act('Could not create the share link', async (event) => {
  event.preventDefault();
  const days = Number(event.target.days.value);
  const link = await request(`/api/projects/${id(state.project.id)}/share-links/`, {
    method: 'POST',
    body: { expires_in_days: days },
  });
  state.newLink = link;
  $('#new-link').hidden = false;
  $('#new-link-url').value = link.url;
  await loadLinks();
  $('#copy-link').focus();
  announce(`Share link created, valid ${plural(days, 'day', 'days')}. Copy it now: it is shown only once.`);
}));

$('#copy-link').addEventListener('click', async () => {
  const input = $('#new-link-url');
  try {
    await navigator.clipboard.writeText(input.value);
    announce('Link copied to the clipboard.');
  } catch {
    // No clipboard API (an insecure origin, a refused permission): the
    // old way, and failing that the link selected for Ctrl+C.
    input.focus();
    input.select();
    const copied = document.execCommand?.('copy');
    announce(copied ? 'Link copied to the clipboard.' : 'The link is selected: press Ctrl+C (⌘C) to copy it.');
  }
});

const revokeLink = act('Could not revoke the link', async (link) => {
  const sure = await confirmAction(
    `Revoke the share link created ${formatDate(link.created_at)}? Whoever has it loses access at once.`,
    'Revoke link',
  );
  if (!sure) return;
  await request(`/api/projects/${id(state.project.id)}/share-links/${id(link.id)}/`, { method: 'DELETE' });
  if (state.newLink?.id === link.id) {
    state.newLink = null;
    $('#new-link').hidden = true;
  }
  await loadLinks();
  announce('Share link revoked.');
  $('#share-heading').focus();
});

// --- start -------------------------------------------------------------------

// Headings of the page (not of dialogs) take focus after a delete removed the focused control.
for (const heading of document.querySelectorAll('main :is(h1, h2, h3, h4)')) heading.tabIndex = -1;
window.addEventListener('hashchange', route);
config()
  .then(route)
  .catch((error) => announce(`The console is not configured: ${reason(error)}`, { error: true }));
