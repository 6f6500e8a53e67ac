// Uploads straight to S3 through the `/v1/files` contract (README, "Direct
// uploads"): initiate with the box as parent, PUT the parts to their
// presigned URLs (XMLHttpRequest, for upload progress; several at once),
// then complete. Bytes never pass through the API.
//
// Resume after a reload: the upload's state (file id, upload id, part size,
// the ETags of finished parts) is kept in localStorage under the file's
// name, size, modification time and box. When the same file is picked again
// the server is asked which parts S3 holds, and only the rest are sent.

import { ApiError, request, id } from './api.js';

const MiB = 1024 * 1024;
/** Parts sent at once: enough to fill a connection, few enough for a browser's six per host. */
const PARALLEL = 4;
const ATTEMPTS = 4;
const STATE_PREFIX = 'assetbox.upload:';

// What the API allows (ALLOWED_CONTENT_TYPES), by extension: browsers leave
// `File.type` empty for some of these (.heic, .avif on older systems).
const TYPES = {
  jpg: 'image/jpeg', jpeg: 'image/jpeg', png: 'image/png', webp: 'image/webp', gif: 'image/gif',
  avif: 'image/avif', heic: 'image/heic', heif: 'image/heif', tif: 'image/tiff', tiff: 'image/tiff',
  mp4: 'video/mp4', m4v: 'video/mp4', mov: 'video/quicktime', webm: 'video/webm',
};

function contentType(file) {
  if (file.type) return file.type;
  const ext = file.name.split('.').pop().toLowerCase();
  // Unknown: sent empty, so the API's refusal names what it allows.
  return TYPES[ext] ?? '';
}

/** Parts of at least 5 MiB (S3's minimum), and never more than 10,000 of them. */
export function partSizeFor(size) {
  return Math.max(5 * MiB, Math.ceil(size / 10_000 / MiB) * MiB);
}

/** Where an upload's state is kept: the same file into the same box finds it. */
export const uploadKey = (file, box) => `${STATE_PREFIX}${box}:${file.size}:${file.lastModified}:${file.name}`;

function readState(key) {
  try {
    return JSON.parse(localStorage.getItem(key));
  } catch {
    return null;
  }
}

const writeState = (key, state) => localStorage.setItem(key, JSON.stringify(state));

/** Unfinished uploads of a box, from earlier visits: `{key, name, size, done, parts}`. */
export function unfinishedUploads(box) {
  const found = [];
  for (let i = 0; i < localStorage.length; i += 1) {
    const key = localStorage.key(i);
    if (!key.startsWith(`${STATE_PREFIX}${box}:`)) continue;
    const state = readState(key);
    if (state) found.push({ key, name: state.name, size: state.size, done: Object.keys(state.etags).length, parts: state.numParts });
  }
  return found;
}

/** Gives up an unfinished upload: S3 drops its parts, the quota is given back. */
export async function discardUpload(key) {
  const state = readState(key);
  localStorage.removeItem(key);
  if (state) await request(`/v1/files/uploads/${id(state.id)}`, { method: 'DELETE' }).catch(() => {});
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

class Aborted extends Error {
  constructor() {
    super('The upload was cancelled');
    this.name = 'AbortError';
  }
}

/**
 * Uploads `file` into `box`. `onProgress(sentBytes, totalBytes)` as bytes
 * go out; `signal` cancels (the S3 upload is aborted). Resolves with
 * `{file, resumed, partsSent}` — `file` is the completed file record, whose
 * `asset_id` is the box's new asset.
 */
export async function uploadFile(file, box, { onProgress = () => {}, signal } = {}) {
  const key = uploadKey(file, box);
  const held = new Map(); // part number → ETag of a part S3 holds
  let state = readState(key);
  let resumed = false;
  if (state) {
    try {
      const listed = await request(`/v1/files/uploads/${id(state.id)}/uploaded-parts`);
      // A part of another size than ours (an older attempt) is sent again.
      for (const part of listed.parts) {
        if (part.size === partBytes(state, part.part_number)) held.set(part.part_number, part.etag);
      }
      resumed = true;
    } catch (error) {
      if (error.status === 409) {
        // Completed meanwhile (e.g. the tab closed right after complete).
        const record = await request(`/v1/files/${id(state.id)}`).catch(() => null);
        if (record?.upload_status === 'completed') {
          localStorage.removeItem(key);
          return { file: record, resumed: true, partsSent: 0 };
        }
      }
      // Only a gone upload (404: unknown; 409: aborted or expired) starts
      // over; offline, throttled, signed out or a server error keeps the
      // state for the next try (a new upload would hold the quota twice).
      if (error.status !== 404 && error.status !== 409) throw error;
      localStorage.removeItem(key);
      state = null;
    }
  }
  const urls = new Map();
  if (!state) {
    const partSize = partSizeFor(file.size);
    const created = await request('/v1/files/uploads', {
      method: 'POST',
      body: {
        file_name: file.name,
        file_size: file.size,
        file_content_type: contentType(file),
        num_parts: Math.max(1, Math.ceil(file.size / partSize)),
        part_size: partSize,
        parent_content_type: 'box',
        parent_object_id: box,
      },
    });
    state = {
      id: created.id,
      uploadId: created.upload_id,
      partSize: created.part_size,
      numParts: created.num_parts,
      name: file.name,
      size: file.size,
      etags: {},
    };
    writeState(key, state);
    for (const { part_number: n, url } of created.presigned_urls) urls.set(n, url);
  }
  if (signal?.aborted) throw new Aborted();

  const missing = [];
  for (let n = 1; n <= state.numParts; n += 1) if (!held.has(n)) missing.push(n);
  let sentBytes = [...held.keys()].reduce((sum, n) => sum + partBytes(state, n), 0);
  const inFlight = new Map(); // part number → bytes sent so far
  const report = () => onProgress(sentBytes + [...inFlight.values()].reduce((a, b) => a + b, 0), file.size);
  report();

  // One failure stops the other parts: what was sent stays for a resume.
  const stop = new AbortController();
  const onAbort = () => stop.abort();
  signal?.addEventListener('abort', onAbort);
  let signing = null;
  const urlFor = async (n, fresh = false) => {
    if (fresh) urls.delete(n);
    while (!urls.has(n)) {
      // Sign the next hundred missing parts at once (the API signs up to 500).
      signing ??= (async () => {
        const wanted = missing.filter((m) => m >= n && !held.has(m) && (!urls.has(m) || m === n)).slice(0, 100);
        const signed = await request(`/v1/files/uploads/${id(state.id)}/parts?part_numbers=${wanted.join(',')}`);
        for (const { part_number: m, url } of signed.presigned_urls) urls.set(m, url);
      })().finally(() => {
        signing = null;
      });
      await signing;
    }
    return urls.get(n);
  };

  const queue = [...missing];
  const worker = async () => {
    while (queue.length && !stop.signal.aborted) {
      const n = queue.shift();
      const etag = await sendPart(n);
      held.set(n, etag);
      state.etags[n] = etag;
      writeState(key, state);
      inFlight.delete(n);
      sentBytes += partBytes(state, n);
      report();
    }
  };
  const sendPart = async (n) => {
    const start = (n - 1) * state.partSize;
    const blob = file.slice(start, start + partBytes(state, n));
    for (let attempt = 1; ; attempt += 1) {
      try {
        return await put(await urlFor(n, attempt > 1), blob, stop.signal, (loaded) => {
          inFlight.set(n, loaded);
          report();
        });
      } catch (error) {
        inFlight.delete(n);
        // Cancelled, or refused for good (a 4xx other than an expired URL).
        if (stop.signal.aborted || attempt >= ATTEMPTS || (error.status >= 400 && error.status < 500 && error.status !== 403)) {
          throw error;
        }
        await sleep(500 * 2 ** attempt);
      }
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.min(PARALLEL, missing.length) }, worker));
  } catch (error) {
    stop.abort();
    throw signal?.aborted ? new Aborted() : error;
  } finally {
    signal?.removeEventListener('abort', onAbort);
  }
  if (signal?.aborted) throw new Aborted();

  const parts = [...held.entries()].sort((a, b) => a[0] - b[0]).map(([part_number, etag]) => ({ part_number, etag }));
  const record = await request(`/v1/files/uploads/${id(state.id)}/complete`, { method: 'POST', body: { parts } });
  localStorage.removeItem(key);
  return { file: record, resumed, partsSent: missing.length };
}

/** Cancels an upload that was started: the caller's `signal` fired. */
export async function abortUpload(file, box) {
  await discardUpload(uploadKey(file, box));
}

function partBytes(state, n) {
  return n < state.numParts ? state.partSize : state.size - (state.numParts - 1) * state.partSize;
}

/** One PUT to a presigned URL; resolves with S3's ETag (the bucket's CORS exposes it). */
function put(url, blob, signal, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open('PUT', url);
    xhr.upload.onprogress = (event) => onProgress(event.loaded);
    xhr.onload = () => {
      const etag = xhr.getResponseHeader('etag');
      if (xhr.status >= 200 && xhr.status < 300 && etag) resolve(etag);
      else if (xhr.status < 300) reject(new ApiError(xhr.status, { message: 'the storage answered without an ETag (check the bucket\'s CORS ExposeHeaders)' }));
      else reject(new ApiError(xhr.status, { message: `the storage refused a part (${xhr.status})` }));
    };
    xhr.onerror = () => reject(new ApiError(0, { message: 'the storage cannot be reached' }));
    xhr.onabort = () => reject(new Aborted());
    signal.addEventListener('abort', () => xhr.abort(), { once: true });
    xhr.send(blob);
  });
}
