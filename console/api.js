// The API client both pages share: where the API is (config.json), JSON
// requests, the error contract, and the signed-in session — its tokens kept
// in localStorage and refreshed shortly before they expire, or once after
// a 401.

let configured;

/**
 * `config.json` beside the pages: `{apiUrl, liveUrl}`. A deployment writes
 * it from the stack's outputs, so the same files serve any stack. The path
 * is absolute because the share page lives under `/shared/<token>`.
 */
export function config() {
  configured ??= fetch('/config.json', { cache: 'no-store' }).then(async (response) => {
    if (!response.ok) throw new Error(`config.json answered ${response.status}`);
    const { apiUrl, liveUrl } = await response.json();
    return { apiUrl: String(apiUrl).replace(/\/+$/, ''), liveUrl: liveUrl || null };
  });
  return configured;
}

/** A refused request, with the API's reason (`{"error": {code, message, fields}}`). */
export class ApiError extends Error {
  constructor(status, body, headers) {
    const error = body?.error ?? {};
    // The gateway's own answers (401, 404, 413) carry a bare `message`.
    super(error.message ?? body?.message ?? (status ? `HTTP ${status}` : 'The API cannot be reached'));
    this.status = status;
    this.code = error.code ?? null;
    this.fields = error.fields ?? null;
    this.retryAfter = Number(headers?.get('retry-after')) || null;
  }

  /** Field errors say more than "invalid fields: x"; other messages stand alone. */
  describe() {
    if (this.code === 'validation_failed' && this.fields) {
      return Object.entries(this.fields)
        .map(([field, why]) => `${field.replaceAll('_', ' ')} ${why}`)
        .join('; ');
    }
    return this.message;
  }
}

// --- the session -----------------------------------------------------------

const SESSION_KEY = 'assetbox.session';
// Refresh this long before the access token expires (the live socket's
// events stop at its token's expiry, so it reconnects with the new one).
const REFRESH_MARGIN_MS = 60_000;

let session = readSession();
let refreshing = null;
let refreshTimer = null;
const listeners = new Set();

function readSession() {
  try {
    return JSON.parse(localStorage.getItem(SESSION_KEY));
  } catch {
    return null;
  }
}

function setSession(next, why) {
  session = next;
  if (next) localStorage.setItem(SESSION_KEY, JSON.stringify(next));
  else localStorage.removeItem(SESSION_KEY);
  scheduleRefresh();
  for (const listener of listeners) listener(session, why);
}

/** `fn(session, why)` on sign-in, refresh ('refreshed'), sign-out and expiry ('expired'). */
export function onSession(fn) {
  listeners.add(fn);
}

export const currentSession = () => session;

// Another tab signed in, refreshed or out: follow it.
window.addEventListener('storage', (event) => {
  if (event.key === SESSION_KEY) {
    session = readSession();
    scheduleRefresh();
    for (const listener of listeners) listener(session, 'other-tab');
  }
});

function scheduleRefresh() {
  clearTimeout(refreshTimer);
  if (!session?.refreshToken) return;
  const wait = Math.max(0, session.expiresAt - REFRESH_MARGIN_MS - Date.now());
  refreshTimer = setTimeout(() => refresh().catch(() => {}), wait);
}

function fromTokens(email, tokens, refreshToken = tokens.refresh_token) {
  return {
    email,
    accessToken: tokens.access_token,
    refreshToken,
    expiresAt: Date.now() + tokens.expires_in * 1000,
  };
}

export async function login(email, password) {
  const tokens = await request('/api/auth/login', { method: 'POST', body: { email, password }, auth: false });
  setSession(fromTokens(email, tokens), 'signed-in');
}

export async function register(email, password) {
  await request('/api/auth/register', { method: 'POST', body: { email, password }, auth: false });
  await login(email, password);
}

/** Signs out everywhere (Cognito revokes the refresh tokens), then forgets the tokens. */
export async function logout() {
  try {
    await request('/api/auth/logout', { method: 'POST', retry: false });
  } finally {
    setSession(null, 'signed-out');
  }
}

/** One refresh at a time; a refused refresh ends the session. */
function refresh() {
  refreshing ??= (async () => {
    const held = session;
    if (!held?.refreshToken) throw new ApiError(401, { message: 'Not signed in' });
    try {
      const tokens = await request('/api/auth/refresh', {
        method: 'POST',
        body: { refresh_token: held.refreshToken },
        auth: false,
      });
      // Cognito answers no new refresh token: the old one stays valid.
      setSession(fromTokens(held.email, tokens, held.refreshToken), 'refreshed');
    } catch (error) {
      // Only a refused refresh token ends the session (not throttling).
      if ([400, 401, 403].includes(error.status)) setSession(null, 'expired');
      throw error;
    } finally {
      refreshing = null;
    }
  })();
  return refreshing;
}

/** A valid access token, refreshed first when it is about to expire. */
export async function accessToken() {
  if (session && session.expiresAt - Date.now() < REFRESH_MARGIN_MS) await refresh();
  if (!session) throw new ApiError(401, { message: 'Not signed in' });
  return session.accessToken;
}

// --- requests --------------------------------------------------------------

/**
 * A JSON request to the API. `body` is sent as JSON; the answer is parsed
 * (null for 204). `auth` adds the bearer token; a 401 refreshes it and
 * tries once more. Throws ApiError with the API's reason.
 */
export async function request(path, { method = 'GET', body, auth = true, headers = {}, retry = true } = {}) {
  const { apiUrl } = await config();
  const send = async () => {
    const all = { accept: 'application/json', ...headers };
    if (body !== undefined) all['content-type'] = 'application/json';
    if (auth) all.authorization = `Bearer ${await accessToken()}`;
    try {
      return await fetch(`${apiUrl}${path}`, {
        method,
        headers: all,
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch {
      throw new ApiError(0, null);
    }
  };
  let response = await send();
  if (response.status === 401 && auth && retry && session) {
    await refresh();
    response = await send();
  }
  const text = await response.text();
  let parsed = null;
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch {
    parsed = null;
  }
  if (!response.ok) throw new ApiError(response.status, parsed, response.headers);
  return parsed;
}

/** Every page of a list route (`{results, next_cursor}`). */
export async function listAll(path, { limit = 200, auth = true } = {}) {
  const results = [];
  let cursor = null;
  do {
    const join = path.includes('?') ? '&' : '?';
    const page = await request(
      `${path}${join}limit=${limit}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`,
      { auth },
    );
    results.push(...page.results);
    cursor = page.next_cursor;
  } while (cursor);
  return results;
}

/** `encodeURIComponent` for ids in paths (they are ULIDs, but never trust that). */
export const id = encodeURIComponent;
