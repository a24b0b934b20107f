// StreamHub development page: the stream list (/api/streams), a WHEP player and a chat
// panel speaking `streamhub.chat.v1` (docs/chat-protocol.md). No build step, no
// dependencies: the hub serves this file as it is.
//
// URL parameters (all optional):
//   ?stream=NAME   watch NAME as soon as it is live
//   ?room=NAME     chat in NAME without watching (e.g. against a chat-only hub)
//   ?token=JWT     use this chat token instead of asking POST /api/token
//   ?chat=URL      chat WebSocket URL (default: what /api/token says, else ws://HOST/chat)
//   ?api=URL       base URL of the hub's HTTP API (default: this page's origin; another
//                  origin needs `streamhub hub --cors-origin` naming this page's origin)
//
// Without ?token= the page asks the hub for a guest token for the room it shows
// (POST /api/token {user, room}): the hub only gives them when it listens on loopback,
// names the guest `NAME (guest)`, and refuses the name of a real user in the room (409).

const params = new URLSearchParams(location.search);
const API = (params.get('api') || location.origin).replace(/\/$/, '');
const SUBPROTOCOL = 'streamhub.chat.v1';
const $ = (id) => document.getElementById(id);

// ---------------------------------------------------------------------------------------
// Small helpers

/** An element with text content only: user-supplied text never goes through innerHTML. */
function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** A random id: crypto.randomUUID needs a secure context, getRandomValues does not. */
function randomId() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

function formatDuration(ms) {
  const s = Math.floor(ms / 1000);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const pad = (n) => String(n).padStart(2, '0');
  return h ? `${h}:${pad(m)}:${pad(s % 60)}` : `${m}:${pad(s % 60)}`;
}

// ---------------------------------------------------------------------------------------
// Stream list: GET /api/streams every 2 s

const streams = { list: [], selected: null };

function describeStream(s) {
  const parts = [];
  if (s.video) parts.push(`${s.video.codec} ${s.video.width}×${s.video.height}`);
  else parts.push('no video');
  if (s.audio) parts.push(`${s.audio.codec}${s.audio.source ? ` (from ${s.audio.source})` : ''}`);
  if (s.bitrate_kbps != null) parts.push(`${s.bitrate_kbps} kbit/s`);
  parts.push(s.viewers === 1 ? '1 viewer' : `${s.viewers ?? 0} viewers`);
  if (s.live_for_ms != null) parts.push(`live ${formatDuration(s.live_for_ms)}`);
  return parts.join(' · ');
}

function renderStreams() {
  const list = $('streams');
  list.replaceChildren(...streams.list.map((s) => {
    const button = el('button');
    button.type = 'button';
    button.dataset.stream = s.name;
    button.setAttribute('aria-pressed', String(s.name === streams.selected));
    button.append(el('span', 'stream-name', s.name), el('span', 'stream-meta', describeStream(s)));
    button.addEventListener('click', () => select(s.name));
    const item = el('li');
    item.append(button);
    return item;
  }));
  $('streams-state').textContent = streams.list.length ? '' : 'no live stream: publish one to rtmp://HOST/live/NAME';
}

async function pollStreams() {
  try {
    const response = await fetch(`${API}/api/streams`, { cache: 'no-store' });
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    streams.list = (await response.json()).streams || [];
    renderStreams();
    const wanted = params.get('stream');
    if (wanted && !streams.selected && streams.list.some((s) => s.name === wanted)) select(wanted);
    followSelected();
  } catch (error) {
    $('streams-state').textContent = `stream list unavailable (${error.message})`;
  }
  setTimeout(pollStreams, 2000);
}

/** The picked stream ended: stop watching (chat stays); it came back: watch again. */
function followSelected() {
  const name = streams.selected;
  const info = name && streams.list.find((s) => s.name === name);
  if (name && !info && player.name === name) {
    player.leave().then(() => {
      player.ended = name;
      showStatus();
    });
  } else if (info && player.ended === name && player.name !== name) {
    player.watch(name, info.whep || `/whep/${encodeURIComponent(name)}`);
  }
}

/** Picks a stream: watch it and chat in its room (the room of a stream is its name). */
function select(name) {
  if (name === streams.selected) return;
  streams.selected = name;
  renderStreams();
  const info = streams.list.find((s) => s.name === name);
  player.watch(name, info?.whep || `/whep/${encodeURIComponent(name)}`);
  chat.setRoom(info?.room || name);
}

// ---------------------------------------------------------------------------------------
// WHEP player: one receive-only RTCPeerConnection, non-trickle (the offer carries every
// candidate), DELETE of the session resource on leave and on unload.

const player = {
  pc: null,
  name: null,
  resource: null, // absolute URL of the WHEP session (from Location)
  startedAt: 0,
  firstFrameMs: null,
  lastSample: null, // previous getStats figures, for rates
  error: null,
  ended: null, // the stream we watched until it ended, to watch again when it is back

  async watch(name, whepPath) {
    await this.leave();
    this.ended = null;
    this.name = name;
    this.error = null;
    this.firstFrameMs = null;
    this.lastSample = null;
    this.startedAt = performance.now();
    $('watching').textContent = name;
    $('leave').disabled = false;
    $('mute').disabled = false;
    const pc = new RTCPeerConnection({ iceServers: [] });
    this.pc = pc;
    pc.addTransceiver('video', { direction: 'recvonly' });
    pc.addTransceiver('audio', { direction: 'recvonly' });
    const media = new MediaStream();
    pc.ontrack = (event) => media.addTrack(event.track);
    const video = $('video');
    video.srcObject = media;
    this.watchFirstFrame(video, pc);
    pc.onconnectionstatechange = () => showStatus();
    try {
      // 1. Offer, and wait for ICE gathering so that the offer holds every candidate.
      await pc.setLocalDescription(await pc.createOffer());
      await iceGatheringComplete(pc, 2000);
      // 2. POST the offer; 201 carries the answer and the session's Location. The chat
      //    token (when we have one) names us, so that watching and chatting count once
      //    in the room's audience; watching works without it.
      const url = new URL(whepPath, API + '/').href;
      const headers = { 'Content-Type': 'application/sdp' };
      const auth = await getToken(chatName(), name).catch(() => null);
      if (auth) headers.Authorization = `Bearer ${auth.token}`;
      const post = () => fetch(url, { method: 'POST', headers, body: pc.localDescription.sdp });
      let response = await post();
      if (response.status === 401 && headers.Authorization) {
        // An expired or foreign token: the hub refuses it, but watching needs none.
        delete headers.Authorization;
        response = await post();
      }
      if (response.status === 404) throw new Error('stream is not live (404)');
      if (response.status !== 201) throw new Error(`WHEP answered ${response.status}: ${await response.text()}`);
      const location = response.headers.get('Location');
      if (location) this.resource = new URL(location, url).href;
      if (this.pc !== pc) return this.deleteSession(); // left while waiting
      // 3. The answer is complete (non-trickle): nothing more to exchange.
      await pc.setRemoteDescription({ type: 'answer', sdp: await response.text() });
      video.play().catch(() => {}); // autoplay is muted, so this is allowed
    } catch (error) {
      if (this.pc === pc) this.error = error.message;
    }
    showStatus();
  },

  /** Time to the first decoded picture, from the moment the viewer picked the stream. */
  watchFirstFrame(video, pc) {
    const done = () => {
      if (this.pc === pc && this.firstFrameMs === null) {
        this.firstFrameMs = Math.round(performance.now() - this.startedAt);
      }
    };
    if (video.requestVideoFrameCallback) video.requestVideoFrameCallback(done);
    else video.addEventListener('loadeddata', done, { once: true });
  },

  async leave() {
    const pc = this.pc;
    this.pc = null;
    if (pc) pc.close();
    await this.deleteSession();
    $('video').srcObject = null;
    this.name = null;
    $('watching').textContent = 'nothing';
    $('leave').disabled = true;
  },

  /** Ends the WHEP session on the hub (DELETE on the Location). */
  async deleteSession({ keepalive = false } = {}) {
    const resource = this.resource;
    this.resource = null;
    if (!resource) return;
    try {
      await fetch(resource, { method: 'DELETE', keepalive });
    } catch {
      // the hub also ends sessions whose peer went away
    }
  },

  /** The figures of the status line and of window.streamhub.stats(). */
  async stats() {
    const pc = this.pc;
    const out = {
      stream: this.name,
      connectionState: pc ? pc.connectionState : 'closed',
      iceConnectionState: pc ? pc.iceConnectionState : 'closed',
      framesDecoded: 0,
      framesPerSecond: 0,
      frameWidth: 0,
      frameHeight: 0,
      videoCodec: null,
      videoBitrateKbps: 0,
      audioPacketsReceived: 0,
      audioCodec: null,
      firstFrameMs: this.firstFrameMs,
      error: this.error,
    };
    if (!pc) return out;
    const report = await pc.getStats();
    let videoBytes = 0;
    report.forEach((s) => {
      if (s.type !== 'inbound-rtp') return;
      const codec = s.codecId && report.get(s.codecId);
      if (s.kind === 'video') {
        out.framesDecoded = s.framesDecoded || 0;
        out.framesPerSecond = s.framesPerSecond || 0;
        out.frameWidth = s.frameWidth || 0;
        out.frameHeight = s.frameHeight || 0;
        out.videoCodec = codec ? codec.mimeType.replace(/^video\//, '') : null;
        videoBytes = s.bytesReceived || 0;
      } else if (s.kind === 'audio') {
        out.audioPacketsReceived = s.packetsReceived || 0;
        out.audioCodec = codec ? codec.mimeType.replace(/^audio\//, '') : null;
      }
    });
    // Bitrate over the last second or so (callers may ask more often than the status line).
    const now = performance.now();
    const last = this.lastSample;
    if (!last || now - last.at >= 900) {
      const kbps = last ? Math.round(((videoBytes - last.bytes) * 8) / (now - last.at)) : 0;
      this.lastSample = { at: now, bytes: videoBytes, kbps };
    }
    out.videoBitrateKbps = this.lastSample.kbps;
    return out;
  },
};

/** Resolves when ICE gathering is complete, or after `capMs` with what was gathered. */
function iceGatheringComplete(pc, capMs) {
  if (pc.iceGatheringState === 'complete') return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(finish, capMs);
    function finish() {
      clearTimeout(timer);
      pc.removeEventListener('icegatheringstatechange', check);
      resolve();
    }
    function check() {
      if (pc.iceGatheringState === 'complete') finish();
    }
    pc.addEventListener('icegatheringstatechange', check);
  });
}

async function showStatus() {
  if (player.ended && !player.pc) {
    $('status').textContent = `${player.ended} ended: watching again when it is back`;
    return;
  }
  if (!player.pc && !player.error) {
    $('status').textContent = 'pick a stream';
    return;
  }
  const s = await player.stats();
  const lines = [`connection: ${s.connectionState}${s.error ? ` — error: ${s.error}` : ''}`];
  if (s.videoCodec || s.framesDecoded) {
    lines.push(`video: ${s.videoCodec ?? '?'} ${s.frameWidth}×${s.frameHeight} · ${s.framesDecoded} frames decoded · ` +
      `${s.framesPerSecond} fps · ${s.videoBitrateKbps} kbit/s`);
  }
  lines.push(`audio: ${s.audioCodec ?? '—'} · ${s.audioPacketsReceived} packets`);
  if (s.firstFrameMs !== null) lines.push(`first frame after ${s.firstFrameMs} ms`);
  $('status').textContent = lines.join('\n');
}

function toggleMute() {
  const video = $('video');
  video.muted = !video.muted;
  if (!video.muted) video.play().catch(() => {});
  $('mute').textContent = video.muted ? 'Unmute' : 'Mute';
}

// ---------------------------------------------------------------------------------------
// Chat: streamhub.chat.v1 over a WebSocket. Commands carry an `id` and get exactly one
// `reply`; everything else the server sends is a push (docs/chat-protocol.md §2).

const TERMINAL_CLOSE = new Set([4001, 4003, 4004]); // unauthorized, banned, protocol error
const COMMAND_TIMEOUT_MS = 10000;

const chat = {
  ws: null,
  nextId: 1,
  pending: new Map(), // command id → { resolve, reject, timer }
  room: null,
  cursor: null, // { epoch, seq } of the last message shown in `room`
  userId: null, // who the server says we are (from the connect result)
  outbox: [], // sends not yet acknowledged, oldest first: { room, client_msg_id, text, resolve, reject }
  sending: false,
  attempt: 0, // reconnect attempts since the last long-lived connection
  retryAfterMs: 0,
  terminal: false, // the server said not to reconnect
  connectedAt: 0,
  lastReceived: 0,
  log: [], // what the panel shows: { type: 'message'|'system'|'error', ... }
  reconnectTimer: null,
  generation: 0, // bumps on every new connection, to ignore stale sockets

  /** Joins `room` (leaving the previous one), connecting first when needed. */
  setRoom(room) {
    if (room === this.room) return;
    if (this.room && this.ready()) this.command({ type: 'leave', room: this.room }).catch(() => {});
    this.room = room;
    this.cursor = null;
    this.log = [];
    $('chat-room').textContent = `#${room}`;
    renderChat();
    // A guest token allows one room: another room needs its own token, so a new connection.
    if (this.ready() && params.has('token')) this.join().catch((e) => this.system(`join failed: ${e.message}`, 'error'));
    else this.reconnectNow();
  },

  ready() {
    return this.ws && this.ws.readyState === WebSocket.OPEN && this.ws.streamhubConnected;
  },

  /** Drops any current connection and connects again at once (e.g. after a name change). */
  reconnectNow() {
    clearTimeout(this.reconnectTimer);
    this.terminal = false;
    this.attempt = 0;
    if (this.ws) this.ws.close(1000, 'reconnecting');
    this.ws = null;
    this.open();
  },

  /** Opens the WebSocket and runs connect → join → resend. */
  async open() {
    if (!this.room) return;
    const generation = ++this.generation;
    setChatState('getting a token…');
    let auth;
    try {
      auth = await getToken(chatName(), this.room);
    } catch (error) {
      this.system(`no chat token: ${error.message}`, 'error');
      return this.scheduleReconnect();
    }
    if (generation !== this.generation) return;
    setChatState('connecting…');
    const ws = new WebSocket(auth.chat, SUBPROTOCOL);
    this.ws = ws;
    ws.onmessage = (event) => generation === this.generation && this.receive(event.data);
    ws.onclose = (event) => generation === this.generation && this.closed(event);
    ws.onopen = async () => {
      // The server must select our subprotocol, or it speaks something else.
      if (ws.protocol !== SUBPROTOCOL) {
        this.system(`server did not select ${SUBPROTOCOL}`, 'error');
        this.terminal = true;
        return ws.close(1000, 'incompatible');
      }
      try {
        // 1. connect: the first command, with the token (§3).
        const hello = await this.command({
          type: 'connect', token: auth.token, client: { name: 'streamhub-dev-page', version: '0.1' },
        }, ws);
        ws.streamhubConnected = true;
        this.userId = hello.user.id;
        if (params.has('token')) $('chat-name').value = hello.user.name;
        this.connectedAt = Date.now();
        setChatState(`connected as ${hello.user.name}`);
        // 2. join the room, with `since` when we already showed some of it (§4).
        await this.join();
        // 3. resend what was not acknowledged, with the same client_msg_id (§10.5).
        this.pump();
      } catch (error) {
        this.system(`connect failed: ${error.code || ''} ${error.message}`, 'error');
        if (error.code === 'unauthorized') this.terminal = true;
        if (error.code === 'token_expired') tokenCache = { key: null, promise: null }; // ask anew
        ws.close(1000, 'connect failed');
      }
    };
  },

  async join() {
    const room = this.room;
    const command = { type: 'join', room };
    if (this.cursor) command.since = this.cursor;
    const result = await this.command(command);
    if (room !== this.room) return;
    setViewers(result.viewers);
    // recovered: the messages after `since` follow this reply as pushes, in order. Otherwise
    // nothing is replayed and live messages start after the room's current `seq`.
    const recovered = command.since && result.recovered && result.epoch === command.since.epoch;
    if (recovered) return this.system(`rejoined #${room}: missed messages follow`);
    this.cursor = { epoch: result.epoch, seq: result.seq };
    if (command.since) this.system('reconnected: some messages were missed');
    else this.system(`joined #${room}`);
    if (result.seq > 0) await this.loadRecent(room, result.seq);
  },

  /** The last few messages before our join, from `history` (oldest first), shown above live ones. */
  async loadRecent(room, uptoSeq) {
    const result = await this.command({ type: 'history', room, before_seq: uptoSeq + 1, limit: 20 });
    if (room !== this.room) return;
    this.log.unshift(...result.messages.filter((m) => !m.deleted).map((m) => this.entry(m)));
    renderChat();
  },

  /** Sends one command and resolves with its result (rejects with the error object). */
  command(body, ws = this.ws) {
    return new Promise((resolve, reject) => {
      if (!ws || ws.readyState !== WebSocket.OPEN) return reject(new Error('not connected'));
      const id = this.nextId++;
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`no reply to ${body.type} within ${COMMAND_TIMEOUT_MS / 1000} s`));
        ws.close(1000, 'reply timeout'); // a dead connection (§10.7)
      }, COMMAND_TIMEOUT_MS);
      this.pending.set(id, { resolve, reject, timer });
      ws.send(JSON.stringify({ id, ...body }));
    });
  },

  receive(data) {
    this.lastReceived = Date.now();
    let frame;
    try {
      frame = JSON.parse(data);
    } catch {
      return this.system('unreadable frame from the server', 'error');
    }
    switch (frame.type) {
      case 'reply': {
        const waiter = this.pending.get(frame.id);
        if (!waiter) return;
        this.pending.delete(frame.id);
        clearTimeout(waiter.timer);
        if (frame.ok) waiter.resolve(frame.result || {});
        else waiter.reject(Object.assign(new Error(frame.error?.message || 'error'), frame.error));
        return;
      }
      case 'message': return this.deliver(frame);
      case 'viewers': return frame.room === this.room && setViewers(frame.count);
      case 'member': return frame.room === this.room && this.system(`${frame.user?.name} ${frame.event === 'join' ? 'joined' : 'left'}`);
      case 'deleted': return this.markDeleted(frame);
      case 'kicked': return this.system(`removed from #${frame.room}: ${frame.code}`, 'error');
      case 'error': return this.system(`server error: ${frame.error?.code} ${frame.error?.message}`, 'error');
      case 'token_expiring': return this.refreshToken();
      case 'disconnect':
        // The close follows; remember whether and when to come back (§9).
        if (frame.reconnect === false) this.terminal = true;
        this.retryAfterMs = frame.retry_after_ms || 0;
        return this.system(`server closing: ${frame.code} ${frame.message || ''}`);
      default: // typing, room_state and future push types: nothing to show
    }
  },

  /** Shows a message once: drop what this room's cursor already covers (§10.4). */
  deliver(m) {
    if (m.room !== this.room) return;
    const c = this.cursor;
    if (c && m.epoch === c.epoch && m.seq <= c.seq) return;
    this.cursor = { epoch: m.epoch, seq: m.seq };
    this.log.push(this.entry(m));
    renderChat();
  },

  /** A log entry for a message frame (kept as data; rendered with textContent). */
  entry(m) {
    return {
      type: 'message', room: m.room, seq: m.seq, id: m.id, ts: m.ts, user: m.user?.name,
      userId: m.user?.id, text: m.deleted ? '' : m.text, deleted: !!m.deleted,
      clientMsgId: m.client_msg_id, mine: m.user?.id === this.userId,
    };
  },

  markDeleted({ room, seq }) {
    const entry = this.log.find((e) => e.type === 'message' && e.room === room && e.seq === seq);
    if (entry) Object.assign(entry, { deleted: true, text: '' });
    renderChat();
  },

  /** Queues a message; resolves with the server's ack {id, seq, ts}. */
  send(text) {
    return new Promise((resolve, reject) => {
      if (!this.room) return reject(new Error('no room: pick a stream first'));
      if (this.outbox.length >= 100) return reject(new Error('too many unsent messages'));
      this.outbox.push({ room: this.room, client_msg_id: randomId(), text, resolve, reject });
      this.pump();
    });
  },

  /** Sends the outbox head, one on the wire at a time, so messages stay in order (§10.6). */
  async pump() {
    if (this.sending) return;
    this.sending = true;
    try {
      while (this.outbox.length && this.ready()) {
        const head = this.outbox[0];
        try {
          const ack = await this.command({ type: 'send', room: head.room, client_msg_id: head.client_msg_id, text: head.text });
          this.outbox.shift();
          head.resolve(ack);
        } catch (error) {
          if (!error.code) break; // connection trouble: resent after the reconnect
          if (error.temporary) {
            // rate_limited, slow_mode, timed_out: hold the head, then resend it.
            this.system(`${error.code}: retrying in ${Math.ceil((error.retry_after_ms || 1000) / 1000)} s`);
            await sleep(error.retry_after_ms || 1000);
            continue;
          }
          this.outbox.shift();
          this.system(`not sent (${error.code}): ${head.text}`, 'error');
          head.reject(error);
        }
      }
    } finally {
      this.sending = false;
    }
  },

  /** token_expiring: get a fresh token and refresh in band (§3). */
  async refreshToken() {
    if (params.get('token')) return this.system('token expiring (fixed ?token= cannot be refreshed)');
    try {
      const auth = await getToken(chatName(), this.room, { fresh: true });
      await this.command({ type: 'refresh', token: auth.token });
    } catch (error) {
      this.system(`token refresh failed: ${error.message}`, 'error');
    }
  },

  closed(event) {
    for (const waiter of this.pending.values()) {
      clearTimeout(waiter.timer);
      waiter.reject(new Error('connection closed'));
    }
    this.pending.clear();
    if (this.ws?.streamhubConnected) this.system(`disconnected (close code ${event.code})`);
    this.ws = null;
    if (TERMINAL_CLOSE.has(event.code)) this.terminal = true;
    if (this.connectedAt && Date.now() - this.connectedAt >= 60000) this.attempt = 0;
    this.connectedAt = 0;
    this.scheduleReconnect();
  },

  /** Full-jitter exponential backoff: random(0, min(30 s, 0.5 s × 2^attempt)), at least retry_after_ms (§10.2). */
  scheduleReconnect() {
    if (this.terminal) {
      setChatState('disconnected (the server asked not to reconnect)');
      return;
    }
    const cap = Math.min(30000, 500 * 2 ** this.attempt);
    const delay = Math.max(Math.random() * cap, this.retryAfterMs);
    this.attempt += 1;
    this.retryAfterMs = 0;
    setChatState(`disconnected: reconnecting in ${(delay / 1000).toFixed(1)} s`);
    clearTimeout(this.reconnectTimer);
    this.reconnectTimer = setTimeout(() => this.open(), delay);
  },

  system(text, type = 'system') {
    this.log.push({ type, text, ts: Date.now() });
    renderChat();
  },
};

const chatName = () => $('chat-name').value.trim() || defaultName;

/** The last token asked for: the player and the chat share one per name and room. */
let tokenCache = { key: null, promise: null };

/**
 * A chat token: ?token= when given, else a guest token from the hub for `room` (viewer of
 * that room only, 1 h), asked once per name and room unless `fresh` (it is about to expire).
 */
function getToken(user, room, { fresh = false } = {}) {
  const key = JSON.stringify([user, room]);
  if (fresh || tokenCache.key !== key) {
    const promise = fetchToken(user, room);
    tokenCache = { key, promise };
    promise.catch(() => tokenCache.promise === promise && (tokenCache = { key: null, promise: null }));
  }
  return tokenCache.promise;
}

async function fetchToken(user, room) {
  const fixed = params.get('token');
  const defaultChat = params.get('chat') || `${API.replace(/^http/, 'ws')}/chat`;
  if (fixed) return { token: fixed, chat: defaultChat };
  const response = await fetch(`${API}/api/token`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ user, room }),
  });
  if (response.status === 409) throw new Error(`the name ${user} is taken by a user here: pick another`);
  if (!response.ok) throw new Error(`POST /api/token answered ${response.status}: ${await response.text()}`);
  const body = await response.json();
  return { token: body.token, chat: params.get('chat') || body.chat || defaultChat };
}

function setChatState(text) {
  $('chat-state').textContent = text;
  const usable = chat.room !== null;
  $('chat-input').disabled = !usable;
  $('chat-send').disabled = !usable;
}

function setViewers(count) {
  $('chat-viewers').textContent = `${count} watching`;
}

function renderChat() {
  const log = $('chat-log');
  const atBottom = log.scrollHeight - log.scrollTop - log.clientHeight < 40;
  log.replaceChildren(...chat.log.map((entry) => {
    if (entry.type !== 'message') return el('li', entry.type, entry.text);
    const item = el('li', entry.mine ? 'mine' : '');
    item.append(el('span', 'user', entry.user ?? '?'),
      el('span', entry.deleted ? 'system' : 'text', entry.deleted ? '(deleted)' : entry.text));
    item.title = new Date(entry.ts).toLocaleTimeString();
    return item;
  }));
  if (atBottom) log.scrollTop = log.scrollHeight;
}

async function submitChat(event) {
  event.preventDefault();
  const input = $('chat-input');
  const text = input.value;
  if (!text.trim()) return;
  input.value = '';
  try {
    await chat.send(text);
  } catch (error) {
    if (!error.code) chat.system(`not sent: ${error.message}`, 'error');
  }
}

// ---------------------------------------------------------------------------------------
// Start-up

const defaultName = `viewer-${Math.floor(1000 + Math.random() * 9000)}`;

function start() {
  $('chat-name').value = defaultName;
  $('chat-name').disabled = params.has('token'); // a fixed token fixes the name
  $('chat-name').addEventListener('change', () => chat.room && chat.reconnectNow());
  $('chat-form').addEventListener('submit', submitChat);
  $('mute').addEventListener('click', toggleMute);
  $('leave').addEventListener('click', () => {
    streams.selected = null;
    player.ended = null;
    renderStreams();
    player.leave().then(showStatus);
  });
  // End the WHEP session when the page goes away (keepalive lets the DELETE outlive it).
  addEventListener('pagehide', () => player.deleteSession({ keepalive: true }));
  setInterval(() => player.pc && showStatus(), 1000);
  if (params.get('room') && !params.get('stream')) chat.setRoom(params.get('room'));
  pollStreams();
}

// For tests (and the curious, from the console).
window.streamhub = {
  stats: () => player.stats(),
  chatLog: () => chat.log.map((entry) => ({ ...entry })),
  sendChat: (text) => chat.send(text),
  select: (name) => select(name),
};

start();
