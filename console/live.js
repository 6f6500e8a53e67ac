// Live status over the WebSocket API (README, "Live status"): follow one
// project, hand each asset event on once (delivery is at least once and may
// reorder: the greatest `version` per asset wins). When the socket cannot
// connect, the console polls instead; it reconnects with backoff, and with
// every refreshed token, since a connection's events stop when the token it
// came with expires.

import { accessToken, config, onSession } from './api.js';

export class LiveStatus {
  /**
   * `onEvent(event)` for each new asset event; `onMode('live' | 'polling' |
   * 'off')` when the way the console learns of changes changes.
   */
  constructor({ onEvent, onMode }) {
    this.onEvent = onEvent;
    this.onMode = onMode;
    this.project = null;
    this.socket = null;
    this.failures = 0;
    this.timer = null;
    this.newest = new Map();
    this.mode = 'off';
    onSession((session, why) => {
      if (!session) this.stop();
      else if (why === 'refreshed' && this.project) this.reconnect();
    });
  }

  /** Follows `project` (one at a time), or nothing with null. */
  follow(project) {
    if (project === this.project) return;
    const previous = this.project;
    this.project = project;
    if (!project) return this.stop();
    if (this.socket?.readyState === WebSocket.OPEN) {
      if (previous) this.send({ action: 'unsubscribe', project: previous });
      this.send({ action: 'subscribe', project });
    } else if (!this.socket) {
      this.connect();
    }
  }

  stop() {
    this.project = null;
    clearTimeout(this.timer);
    const socket = this.socket;
    this.socket = null;
    socket?.close();
    this.setMode('off');
  }

  reconnect() {
    const socket = this.socket;
    this.socket = null;
    socket?.close();
    this.connect();
  }

  setMode(mode) {
    if (mode === this.mode) return;
    this.mode = mode;
    this.onMode(mode);
  }

  send(message) {
    this.socket?.send(JSON.stringify(message));
  }

  async connect() {
    clearTimeout(this.timer);
    const { liveUrl } = await config();
    if (!liveUrl) return this.setMode('polling'); // a deployment without the live API
    let token;
    try {
      token = await accessToken();
    } catch {
      return this.setMode('off');
    }
    if (!this.project || this.socket) return;
    const socket = new WebSocket(`${liveUrl}?token=${encodeURIComponent(token)}`);
    this.socket = socket;
    socket.onopen = () => {
      if (this.socket !== socket) return;
      this.failures = 0;
      this.send({ action: 'subscribe', project: this.project });
    };
    socket.onmessage = (message) => {
      if (this.socket !== socket) return;
      let event;
      try {
        event = JSON.parse(message.data);
      } catch {
        return;
      }
      if (event.type === 'subscribed' && event.project === this.project) {
        // Live from here on; what changed before is fetched by the console.
        this.setMode('live');
        return;
      }
      if (!event.asset_id) {
        if (event.type === 'error') this.setMode('polling');
        return;
      }
      const held = this.newest.get(event.asset_id);
      if (held && held >= event.version) return; // a duplicate or an older change
      this.newest.set(event.asset_id, event.version);
      if (event.project === this.project) this.onEvent(event);
    };
    socket.onclose = () => {
      if (this.socket !== socket) return; // replaced on purpose
      this.socket = null;
      this.setMode('polling');
      // Back off: 1, 2, 4 … 30 s; polling covers the gap.
      this.failures += 1;
      const wait = Math.min(30_000, 1000 * 2 ** (this.failures - 1));
      this.timer = setTimeout(() => this.project && this.connect(), wait);
    };
  }
}
