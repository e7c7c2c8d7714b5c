// @ts-check
// pulse.js: the browser (and Node) client of the pulse.v1 protocol.
//
// One dependency-free ES module. PulseSocket extends EventTarget and speaks
// WebSocket's vocabulary: it dispatches `open`, `message`, `close`, plus
// `statechange`, `subscribed`, `join`, `leave`, `rtt` and `error`.
//
// It follows the client rule of PROTOCOL.md, the same as the Go client:
// the server tells its interval and timeout in the welcome; the client
// holds the server to the same rule, judged by timestamps (hidden tabs fire
// timers late): nothing inbound for interval + a grace means degraded (a
// probe goes out), for interval + timeout means the server is gone, and the
// socket is dropped and dialled again. Reconnects use full-jitter backoff,
// resume every channel from its last position, and resend unacknowledged
// publishes with their idempotency keys. In a browser it also follows the
// page: offline (state "offline" at once), frozen or hidden for the
// back/forward cache (closed at once, resumed when the page comes back).
//
//   import { PulseSocket } from '/pulse.js';
//   const ps = new PulseSocket(`ws://${location.host}/ws`, { client: 'ann' });
//   ps.addEventListener('statechange', (e) => banner(e.detail.state));
//   ps.addEventListener('message', (e) => show(e.channel, e.data, e.from));
//   ps.subscribe('room:lobby', { presence: true, history: 50 });
//   ps.send('room:lobby', { text: 'hi' }); // 'sent' or 'queued'; throws queue_full

/**
 * Where a PulseSocket stands. `offline`: the browser says it has no network;
 * nothing is dialled until its `online` event.
 * @typedef {'connecting'|'open'|'degraded'|'reconnecting'|'offline'|'closed'} State
 */
/** @typedef {{epoch: string, offset: number}} Position */
/** @typedef {{id: string, client: string, info?: any}} Member */
/** @typedef {{pos: Position, duplicate: boolean}} Ack */
/** @typedef {{key?: string, queueKey?: string}} SendOptions */

/**
 * Close codes: the reconnect contract, as in PROTOCOL.md. `true` means
 * reconnect (and resume); any code not listed means do not reconnect.
 * @type {Readonly<Record<number, {name: string, retry: boolean}>>}
 */
export const CLOSE_CODES = Object.freeze({
  1000: { name: 'normal', retry: false },
  1001: { name: 'going away', retry: true },
  1002: { name: 'protocol error', retry: false },
  1003: { name: 'unsupported data', retry: false },
  1005: { name: 'no status', retry: true },
  1006: { name: 'abnormal', retry: true },
  1007: { name: 'invalid payload', retry: false },
  1008: { name: 'policy violation', retry: false },
  1009: { name: 'message too big', retry: false },
  1011: { name: 'internal error', retry: true },
  1012: { name: 'service restart', retry: true },
  1013: { name: 'try again later', retry: true },
  4000: { name: 'heartbeat timeout', retry: true },
  4001: { name: 'slow consumer', retry: true },
  4002: { name: 'token expired', retry: true },
  4100: { name: 'unauthorized', retry: false },
});

/**
 * The numbers of the client rule (PROTOCOL.md, "Client rule") that are not
 * options: checked against testdata/client-rule.json by the Node tests.
 */
export const RULE = Object.freeze({
  /** degraded after interval + min(interval, timeout, 10 × degradedGraceMax) / degradedGraceDivisor */
  degradedGraceDivisor: 10,
  degradedGraceMax: 1000,
  /** a retry= window longer than this (ms) is cut to it */
  retryWindowMax: 120_000,
  /** a publish into a full queue is refused (send throws a PulseError queue_full) */
  queueFull: 'refuse_new',
  /** the close code sent when the server is judged dead */
  closeServerDead: 4000,
  /** the close code sent on any other end (a browser cannot send 1001) */
  closeOther: 1000,
});

/**
 * Reports whether a close code asks the client to reconnect: the codes of
 * CLOSE_CODES marked retry, and the pulse retryable range 4000-4099.
 * @param {number} code
 */
export function retryable(code) {
  if (code in CLOSE_CODES) return CLOSE_CODES[code].retry;
  return code >= 4000 && code <= 4099;
}

/**
 * The retry window (ms) a close reason asks for with the token
 * `retry=<ms>`, cut to RULE.retryWindowMax; 0 without one (retry=0, or a
 * value that is not a number, is none).
 * @param {string} reason
 */
export function retryWindow(reason) {
  const token = (reason || '').split(/\s+/).find((f) => f.startsWith('retry='));
  const digits = token?.slice('retry='.length) || '';
  if (!/^\d{1,10}$/.test(digits) || Number(digits) > 0xffff_ffff) return 0;
  return Math.min(Number(digits), RULE.retryWindowMax);
}

/**
 * Full-jitter backoff: a random delay in [0, min(cap, base * 2^attempt)].
 * @param {number} attempt  0 for the first retry
 * @param {number} base
 * @param {number} cap
 * @param {() => number} [random]
 */
export function backoff(attempt, base, cap, random = Math.random) {
  return Math.floor(random() * (Math.min(cap, base * 2 ** Math.min(attempt, 30)) + 1));
}

/**
 * How long after now (ms since 1970) the token should be refreshed: when a
 * fifth of its remaining life is left, but no earlier than a minute before
 * its exp; null when the token states no exp. The client only schedules by
 * exp; the server verifies the token.
 * @param {string} token @param {number} now
 * @returns {number|null}
 */
export function refreshDelay(token, now) {
  const exp = tokenExpiry(token);
  if (exp === null) return null;
  const left = exp - now;
  return Math.max(0, left - Math.min(left / 5, 60_000));
}

/** The exp of a JWT in ms since 1970, or null. @param {string} token */
function tokenExpiry(token) {
  try {
    const payload = token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
    const exp = JSON.parse(atob(payload)).exp;
    return typeof exp === 'number' && Number.isFinite(exp) ? exp * 1000 : null;
  } catch {
    return null;
  }
}

/** The longest delay setTimeout takes (about 24.8 days); longer ones fire at once. */
const MAX_TIMER = 2 ** 31 - 1;

/**
 * When a connection with the server's interval and timeout (ms) counts as
 * degraded and as lost, in ms of silence.
 * @param {number} interval @param {number} timeout
 * @returns {{degradedAfter: number, lostAfter: number}}
 */
export function livenessBounds(interval, timeout) {
  const grace = Math.min(interval, timeout, RULE.degradedGraceMax * RULE.degradedGraceDivisor) / RULE.degradedGraceDivisor;
  return { degradedAfter: interval + grace, lostAfter: interval + timeout };
}

/** Defaults of PulseOptions: the client rule of PROTOCOL.md. */
export const DEFAULTS = Object.freeze({
  queueSize: 256,
  queueTTL: 30_000,
  backoffBase: 500,
  backoffCap: 20_000,
  stableAfter: 10_000,
  connectTimeout: 10_000,
  pingEvery: 0,
});

/**
 * Options of a PulseSocket. A number option that is not a positive finite
 * number takes its default.
 * @typedef {object} PulseOptions
 * @property {typeof WebSocket} [WebSocket]  the constructor; default globalThis.WebSocket
 * @property {Storage|null} [storage]  where the client id, session and positions survive a reload; default sessionStorage if any; null for none
 * @property {string} [client]  the name sent in hello, shown in presence
 * @property {any} [info]  the info sent in hello
 * @property {number} [queueSize]  publishes held while offline or unacknowledged; past it send throws queue_full. Default 256
 * @property {number} [queueTTL]  a held publish older than this (ms) is dropped. Default 30000
 * @property {number} [backoffBase]  first backoff cap (ms). Default 500
 * @property {number} [backoffCap]  largest backoff (ms). Default 20000
 * @property {number} [stableAfter]  a connection open this long (ms) resets the backoff. Default 10000
 * @property {number} [connectTimeout]  bound (ms) from dialling to the welcome. Default 10000
 * @property {number} [pingEvery]  the client's own ping period for RTT (ms). Zero means the server's interval
 * @property {() => number} [now]  the clock (ms). Default performance.now
 * @property {() => (string|Promise<string>)} [getToken]  returns the signed token (a JWT) of a server that
 *   requires one; called before every dial (so a close with 4002, token expired, comes back with a new token)
 *   and ahead of the token's exp, whose result goes in a refresh. The token goes in the hello, never the URL.
 *   A failure or an empty token counts as a failed dial
 */

/** A `message` event: one publication of a subscribed channel. */
export class PulseMessageEvent extends Event {
  /**
   * @param {string} channel @param {any} data @param {Position} pos @param {boolean} replayed
   * @param {string} from
   */
  constructor(channel, data, pos, replayed, from) {
    super('message');
    this.channel = channel;
    this.data = data;
    this.pos = pos;
    /** true when it came from history on a resume, false when live */
    this.replayed = replayed;
    /** the publisher's member id, set by the server; '' for the server itself */
    this.from = from;
  }
}

/** An event carrying `detail`, like CustomEvent (absent in some runtimes). */
export class PulseEvent extends Event {
  /** @param {string} type @param {any} detail */
  constructor(type, detail) {
    super(type);
    this.detail = detail;
  }
}

/**
 * An error of the server for a request, or of the client for a publish:
 * `code` says which (`queue_full`, `closed`, `expired`, `replaced`, or a
 * server code of PROTOCOL.md such as `forbidden`).
 */
export class PulseError extends Error {
  /** @param {{code: string, message: string}} m */
  constructor(m) {
    super(`pulse: ${m.code}: ${m.message}`);
    this.code = m.code;
  }
}

/**
 * A channel subscription; lives across reconnects.
 * @typedef {object} Sub
 * @property {string} channel
 * @property {boolean} presence
 * @property {boolean} recover  resume from the last position after a drop
 * @property {number} history  publications to fetch on a fresh start
 * @property {Position|null} pos  the last position delivered
 * @property {boolean} fresh  no history fetched yet in this page's life
 * @property {number} reqId  the id of the subscribe in flight, 0 once live
 * @property {boolean} peek  the subscribe in flight only learns the top
 * @property {boolean} refetched  a resume failed and history is being refetched
 */

/**
 * A publish held until acknowledged.
 * @typedef {object} Pending
 * @property {number} id
 * @property {string} channel
 * @property {any} data
 * @property {string} key
 * @property {string} [queueKey]
 * @property {number} at  when it was made
 * @property {boolean} sent  written on the current connection
 * @property {number} notBefore  refused as rate_limited: not written again before this (ms, the clock of now)
 * @property {(a: Ack) => void} resolve
 * @property {(e: Error) => void} reject
 */

/** What restore reads and save writes. @typedef {{id: string, session: string, positions: Record<string, Position>}} Stored */

/** A message of the server; fields by type (PROTOCOL.md). @typedef {Record<string, any>} Inbound */

/**
 * A pulse.v1 connection that knows when it is dead and comes back without
 * losing a message. Owned by the event loop: every method runs there.
 */
export class PulseSocket extends EventTarget {
  // Set by the constructor, never change.
  /** @type {string} */ #url;
  /** @type {Resolved} */ #opts;
  /** @type {typeof WebSocket} */ #WS;
  /** @type {() => number} */ #now;
  /** @type {Storage|null} */ #storage;
  /** @type {string} */ #storageKey;
  /** @type {(() => (string|Promise<string>))|null} */ #getToken;
  // Idempotency keys need only be unique for this socket's life (its queue
  // does not survive a reload), and a duplicated tab copies sessionStorage:
  // so they take a prefix of their own.
  #keyPrefix = randomId();

  // Owned by the event loop: everything below.
  /** @type {State} */ #state = 'connecting';
  #session = ''; // the session token of the current connection, '' while not welcomed
  #member = ''; // this session's public member id in presence
  #token = ''; // the token presented last, from getToken
  #user = ''; // the user the server says the token names
  #dialSeq = 0; // counts dials and drops: a token fetched for an older one is dropped
  #rtt = NaN;
  #retryAt = 0;
  #interval = 25_000;
  #timeout = 10_000;
  /** @type {Map<string, Sub>} */ #subs = new Map();
  /** @type {Pending[]} */ #pending = [];
  /** @type {Map<number, (m: Inbound) => void>} */ #replies = new Map();
  #nextId = 1;
  #keySeq = 0;
  #attempt = 0;
  /** @type {WebSocket|null} */ #ws = null;
  #timers = { dial: 0, check: 0, save: 0, refresh: 0, pace: 0 };
  #paced = 0; // when the last publish refused as rate_limited is due again (the clock of now)
  #lastRecv = 0;
  #openedAt = 0;
  #pingSentAt = 0;
  #pingPending = false;
  #probeBy = 0;
  #everOpen = false;
  /** @type {''|'offline'|'hidden'} why no connection is wanted now */
  #parked = '';
  #forgotten = false; // endSession: storage is never written again
  /** @type {Stored} */ #stored;
  /** @type {Array<[EventTarget|undefined, string, (e: Event) => void]>} */ #listeners;

  /**
   * @param {string} url  ws:// or wss:// URL of the pulse endpoint
   * @param {PulseOptions} [options]
   */
  constructor(url, options = {}) {
    super();
    this.#url = url;
    this.#opts = resolve(options);
    this.#WS = options.WebSocket || globalThis.WebSocket;
    this.#now = options.now || (() => performance.now());
    this.#getToken = options.getToken || null;
    this.#storage = options.storage !== undefined ? options.storage : safeSessionStorage();
    this.#storageKey = `pulse:${url}`;
    this.#stored = this.#restore();
    this.#save();
    this.#listeners = this.#listenToPage();
    this.#dial();
  }

  /** The URL dialled. */
  get url() { return this.#url; }
  /** Where the socket stands; `statechange` reports every change. @returns {State} */
  get state() { return this.#state; }
  /** This session's public member id in presence, kept across reconnects and reloads; '' before the first welcome. */
  get member() { return this.#member; }
  /** The user the server says this client's token names; '' while unknown, or on an anonymous server. */
  get user() { return this.#user; }
  /** The last heartbeat round trip in ms, or NaN. */
  get rtt() { return this.#rtt; }
  /** When the next dial happens (ms on the performance clock) while reconnecting; 0 when none is planned. */
  get retryAt() { return this.#retryAt; }
  /** The server's heartbeat interval (ms), from the welcome. */
  get interval() { return this.#interval; }
  /** The server's heartbeat timeout (ms), from the welcome. */
  get timeout() { return this.#timeout; }
  /** This client's id: survives reloads (in storage) until endSession. */
  get clientId() { return this.#stored.id; }

  /**
   * Subscribes to channel now and after every reconnect.
   * @param {string} channel
   * @param {{presence?: boolean, recover?: boolean, history?: number}} [o]
   *   presence: join the channel's presence; recover (default true): resume
   *   from the last position; history: on a fresh start, also replay up to
   *   this many earlier publications
   */
  subscribe(channel, o = {}) {
    if (this.#subs.has(channel)) this.unsubscribe(channel); // again: replaces
    const stored = this.#stored.positions[channel] || null;
    /** @type {Sub} */
    const sub = {
      channel, presence: !!o.presence, recover: o.recover !== false, history: o.history || 0,
      pos: o.recover === false ? null : stored, fresh: true, reqId: 0, peek: false, refetched: false,
    };
    this.#subs.set(channel, sub);
    if (this.#ws && this.#session) this.#sendSubscribe(sub);
  }

  /** Stops a subscription. @param {string} channel */
  unsubscribe(channel) {
    if (!this.#subs.delete(channel)) return;
    if (this.#session) this.#write({ type: 'unsubscribe', id: this.#nextId++, channel });
  }

  /**
   * Publishes data to channel and says whether it was sent now or queued.
   * Queued publishes go out after the next (re)connect, with the same
   * idempotency key, unless older than queueTTL by then.
   * @param {string} channel
   * @param {any} data  any JSON value
   * @param {SendOptions} [o]  key: the idempotency key (default: made up);
   *   queueKey: a queued publish with the same queueKey is replaced (latest per key)
   * @returns {'sent'|'queued'}
   * @throws {PulseError} code `queue_full` when queueSize publishes already
   *   wait (this publish is refused, the queued ones stay); code `closed`
   *   once the socket is closed
   */
  send(channel, data, o = {}) {
    return this.#enqueue(channel, data, o, () => {}, () => {});
  }

  /**
   * Like send, and resolves with the server's ack; rejects if the publish
   * expires in the queue, is replaced, refused by the server, or the socket
   * closes. Throws at once, like send, when the queue is full or the socket
   * closed.
   * @param {string} channel @param {any} data @param {SendOptions} [o]
   * @returns {{status: 'sent'|'queued', ack: Promise<Ack>}}
   * @throws {PulseError} code `queue_full` or `closed`, as send
   */
  publish(channel, data, o = {}) {
    /** @type {(a: Ack) => void} */
    let resolve = () => {};
    /** @type {(e: Error) => void} */
    let reject = () => {};
    /** @type {Promise<Ack>} */
    const ack = new Promise((res, rej) => { resolve = res; reject = rej; });
    const status = this.#enqueue(channel, data, o, resolve, reject);
    return { status, ack };
  }

  /** Lists the members of channel. @param {string} channel @returns {Promise<Member[]>} */
  presence(channel) {
    return this.#request({ type: 'presence', channel }).then((m) => m.members);
  }

  /**
   * Changes the name (and info) shown in presence; applies to channels joined later.
   * @param {string} client @param {any} [info]
   */
  identify(client, info) {
    this.#opts.client = client;
    this.#opts.info = info;
    if (this.#session) this.#hello();
  }

  /**
   * Skips the wait of a reconnect, or probes a live connection now. While
   * offline it does nothing: the browser's `online` event dials.
   */
  reconnectNow() {
    if (this.#state === 'reconnecting') {
      this.#attempt = 0;
      this.#parked = '';
      this.#dial();
    } else if (this.#session) {
      this.#check(true);
    }
  }

  /**
   * Closes for good: no reconnect; pending publishes are rejected. The
   * session stays in storage, so a reload continues it (see endSession).
   * @param {number} [code]  1000, or 3000-4999; default 1000
   * @param {string} [reason]
   */
  close(code = RULE.closeOther, reason = '') {
    if (this.#state === 'closed') return;
    this.#drop(code, reason);
    for (const [target, type, f] of this.#listeners) target?.removeEventListener(type, f);
    this.#save();
    for (const p of this.#pending.splice(0)) p.reject(new PulseError({ code: 'closed', message: 'socket closed' }));
    this.#setState('closed', { code, reason });
    this.dispatchEvent(new PulseEvent('close', { code, reason, willReconnect: false }));
  }

  /**
   * Ends the session for good (a log out): removes the client id, session
   * token and positions from storage, never writes them again, and closes
   * with 1000. A reload then starts a new session, with a new member id.
   */
  endSession() {
    this.#forgotten = true;
    try {
      this.#storage?.removeItem(this.#storageKey);
    } catch {
      // disabled storage holds nothing
    }
    this.close(RULE.closeOther, 'session ended');
  }

  // ---- storage ----

  /** Reads the client id, session and positions a reload left behind. @returns {Stored} */
  #restore() {
    /** @type {any} */
    let s = null;
    try {
      s = JSON.parse(this.#storage?.getItem(this.#storageKey) || 'null');
    } catch {
      s = null; // unreadable: start over
    }
    return {
      id: typeof s?.id === 'string' ? s.id : randomId(),
      session: typeof s?.session === 'string' ? s.session : '',
      positions: s && typeof s.positions === 'object' && s.positions ? s.positions : {},
    };
  }

  /** Writes what restore reads, unless the session was ended. */
  #save() {
    clearTimeout(this.#timers.save);
    this.#timers.save = 0;
    if (this.#forgotten) return;
    try {
      this.#storage?.setItem(this.#storageKey, JSON.stringify(this.#stored));
    } catch {
      // quota or disabled storage: a reload then starts over
    }
  }

  /** Saves soon, at most every 250 ms. */
  #saveSoon() {
    if (!this.#timers.save) this.#timers.save = setTimeout(() => this.#save(), 250);
  }

  // ---- the page ----

  /**
   * Listens to the page: online, shown or visible again means reconnect
   * now or probe; offline means no connection until online; frozen or
   * hidden for the back/forward cache means close (1000) until resumed.
   */
  #listenToPage() {
    const win = globalThis.window;
    const doc = globalThis.document;
    /** @type {Array<[EventTarget|undefined, string, (e: Event) => void]>} */
    const listeners = [
      [win, 'online', () => this.#wake()],
      [win, 'offline', () => this.#goOffline('offline')],
      [win, 'pageshow', () => this.#wake()],
      [win, 'pagehide', () => this.#hide('page hidden')],
      [doc, 'freeze', () => this.#hide('page frozen')],
      [doc, 'resume', () => this.#wake()],
      [doc, 'visibilitychange', () => { if (doc?.visibilityState === 'visible') this.#wake(); }],
    ];
    for (const [target, type, f] of listeners) target?.addEventListener?.(type, f);
    return listeners;
  }

  /** online, shown, resumed or visible again: reconnect now, or probe the connection. */
  #wake() {
    if (this.#state === 'closed') return;
    if (offline()) return this.#goOffline('offline');
    if (this.#parked || (this.#state === 'reconnecting' && !this.#ws)) {
      this.#parked = '';
      this.#attempt = 0;
      this.#dial();
    } else if (this.#session) {
      this.#check(true);
    }
  }

  /**
   * The browser is offline: drop the connection (a dead one anyway) and
   * wait for the online event, in state offline.
   * @param {string} reason
   */
  #goOffline(reason) {
    if (this.#state === 'closed' || this.#parked === 'offline') return;
    this.#park('offline', reason);
    this.#setState('offline', { offline: true });
  }

  /**
   * The page is frozen or going into the back/forward cache: save, and
   * close the connection cleanly so the server drops it from presence at
   * once; pageshow or resume dials again.
   * @param {string} reason
   */
  #hide(reason) {
    this.#save();
    if (this.#state === 'closed' || this.#parked) return;
    this.#park('hidden', reason);
    this.#setState('reconnecting', { hidden: true, retryAt: 0 });
  }

  /**
   * Closes the connection (1000, reason says why) and plans no dial.
   * @param {'offline'|'hidden'} why @param {string} reason
   */
  #park(why, reason) {
    const had = !!this.#ws;
    this.#drop(RULE.closeOther, reason);
    this.#parked = why;
    this.#retryAt = 0;
    if (had) this.dispatchEvent(new PulseEvent('close', { code: RULE.closeOther, reason, willReconnect: true }));
  }

  // ---- the connection ----

  /** Opens a new WebSocket, unless the browser says it is offline. */
  #dial() {
    clearTimeout(this.#timers.dial);
    this.#timers.dial = 0;
    if (this.#state === 'closed') return;
    if (offline()) return this.#goOffline('offline');
    this.#setState(this.#state === 'connecting' ? 'connecting' : 'reconnecting', { retryAt: 0 });
    this.#retryAt = 0;
    if (!this.#getToken) return this.#open();
    const seq = ++this.#dialSeq;
    const current = () => seq === this.#dialSeq && this.#state !== 'closed' && !this.#parked;
    this.#fetchToken().then(
      (token) => { if (current()) { this.#token = token; this.#open(); } },
      (err) => { if (current()) this.#lost(1006, `token: ${err?.message || err}`); },
    );
  }

  /** Calls getToken, bounded by connectTimeout. @returns {Promise<string>} */
  #fetchToken() {
    const getToken = /** @type {() => (string|Promise<string>)} */ (this.#getToken);
    let timer = 0;
    const late = new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error('getToken timed out')), this.#opts.connectTimeout);
    });
    return Promise.race([Promise.resolve().then(getToken), late])
      .finally(() => clearTimeout(timer))
      .then((token) => {
        if (typeof token !== 'string' || !token) throw new Error('getToken gave no token');
        return token;
      });
  }

  /**
   * Sends a newer token ahead of the current one's exp, on the connection
   * ws; a failed fetch or refusal is tried again at a tenth of the time left.
   * @param {WebSocket|null} ws
   */
  #scheduleRefresh(ws) {
    clearTimeout(this.#timers.refresh);
    const delay = refreshDelay(this.#token, Date.now());
    if (delay === null) return;
    this.#timers.refresh = setTimeout(() => {
      this.#fetchToken()
        .then((token) => {
          if (this.#ws !== ws) return;
          this.#token = token;
          this.#scheduleRefresh(ws);
          return this.#request({ type: 'refresh', token });
        })
        .catch(() => {
          if (this.#ws !== ws) return;
          const left = (tokenExpiry(this.#token) || 0) - Date.now();
          this.#timers.refresh = setTimeout(() => this.#scheduleRefresh(ws), Math.max(1000, left / 10));
        });
    }, Math.min(delay, MAX_TIMER));
  }

  /** Opens the WebSocket of a dial. */
  #open() {
    const ws = new this.#WS(this.#url, 'pulse.v1');
    this.#ws = ws;
    ws.onmessage = (e) => { if (this.#ws === ws) this.#receive(e.data); };
    ws.onclose = (e) => { if (this.#ws === ws) this.#lost(e.code, e.reason); };
    ws.onerror = () => {}; // a close event follows
    this.#timers.check = setTimeout(() => {
      if (this.#ws === ws && !this.#session) this.#lost(1006, 'connect timeout');
    }, this.#opts.connectTimeout);
  }

  /** Handles one inbound frame. @param {any} raw */
  #receive(raw) {
    this.#lastRecv = this.#now();
    if (this.#state === 'degraded') this.#setState('open');
    /** @type {Inbound} */
    let m;
    try {
      m = JSON.parse(raw);
    } catch {
      return; // not pulse.v1: ignore
    }
    if (!m || typeof m !== 'object') return; // not pulse.v1 either
    const reply = m.id && this.#replies.get(m.id);
    if (reply) {
      this.#replies.delete(m.id);
      reply(m);
      return;
    }
    this.#dispatchMessage(m);
  }

  /** Handles an inbound message that answers no request. @param {Inbound} m */
  #dispatchMessage(m) {
    switch (m.type) {
      case 'welcome': return this.#welcomed(m);
      case 'ping': this.#write({ type: 'pong' }); return;
      case 'pong': return this.#ponged();
      case 'message': return this.#deliver(m.channel, m.pos, m.data, false, m.from);
      case 'batch':
        for (const p of m.publications || []) this.#deliver(m.channel, p.pos, p.data, true, p.from);
        return;
      case 'join':
      case 'leave':
        this.dispatchEvent(new PulseEvent(m.type, { channel: m.channel, member: m.member }));
        return;
      case 'error':
        this.dispatchEvent(new PulseEvent('error', m));
    }
  }

  /** The connection is up: resubscribe, resend, start the liveness check. @param {Inbound} m */
  #welcomed(m) {
    clearTimeout(this.#timers.check);
    const prior = this.#stored.session;
    this.#keepSession(m);
    this.#user = m.user || '';
    this.#interval = m.interval_ms || this.#interval;
    this.#timeout = m.timeout_ms || this.#timeout;
    this.#openedAt = this.#lastRecv;
    const resumed = this.#everOpen;
    this.#everOpen = true;
    this.#setState('open', { session: this.#session, member: this.#member });
    // The hello goes before the subscribes: a continued session must be
    // in effect before this connection joins any presence.
    if (prior && prior !== m.session) this.#continueSession(prior, m);
    else if (this.#opts.client || this.#token) this.#hello();
    if (this.#token) this.#scheduleRefresh(this.#ws);
    for (const sub of this.#subs.values()) this.#sendSubscribe(sub);
    this.#flush();
    this.#ping();
    const { degradedAfter } = livenessBounds(this.#interval, this.#timeout);
    const tick = Math.max(50, degradedAfter - this.#interval);
    this.#timers.check = setInterval(() => this.#check(false), tick);
    this.dispatchEvent(new PulseEvent('open', { session: this.#session, member: this.#member, resumed }));
  }

  /**
   * Asks the server to continue the session whose token is prior, so that
   * presence sees this client come back as the same member. If the server
   * refuses, the session of the welcome stands.
   * @param {string} prior @param {Inbound} welcome
   */
  #continueSession(prior, welcome) {
    const ws = this.#ws;
    this.#request({ ...this.#helloMsg(), session: prior })
      .then((ack) => { if (this.#ws === ws) { this.#keepSession(ack); this.#user = ack.user || this.#user; } })
      .catch(() => { if (this.#ws === ws) this.#keepSession(welcome); });
  }

  /** Takes the session token and member id of a welcome or a hello's ack. @param {Inbound} m */
  #keepSession(m) {
    if (!m.session) return;
    this.#session = m.session;
    this.#member = m.member_id || this.#member;
    this.#stored.session = m.session;
    this.#save();
  }

  /** Says hello: the name, info and token; the ack names the user. */
  #hello() {
    const ws = this.#ws;
    this.#request(this.#helloMsg())
      .then((ack) => { if (this.#ws === ws) this.#user = ack.user || this.#user; })
      .catch(() => {});
  }

  #helloMsg() {
    /** @type {Inbound} */
    const m = { type: 'hello', client: this.#opts.client, info: this.#opts.info };
    if (this.#token) m.token = this.#token;
    return m;
  }

  /**
   * The liveness rule, judged by timestamps (livenessBounds): silence past
   * lostAfter (or a probe unanswered for timeout) is death; past
   * degradedAfter the connection is degraded and probed. Also sends the
   * client's pings.
   * @param {boolean} probe  ping now and expect the pong within timeout
   */
  #check(probe) {
    const now = this.#now();
    const silence = now - this.#lastRecv;
    const probeLate = this.#probeBy && now > this.#probeBy;
    const { degradedAfter, lostAfter } = livenessBounds(this.#interval, this.#timeout);
    if (silence >= lostAfter || probeLate) {
      this.#lost(4000, probeLate ? 'probe unanswered' : 'server silent');
      return;
    }
    if (silence >= degradedAfter && this.#state === 'open') {
      this.#setState('degraded');
      probe = true;
    }
    const every = this.#opts.pingEvery || this.#interval;
    if (probe || now - this.#pingSentAt >= every) this.#ping();
    if (probe && !this.#probeBy) this.#probeBy = now + this.#timeout;
  }

  #ping() {
    this.#pingSentAt = this.#now();
    this.#pingPending = true;
    this.#write({ type: 'ping' });
  }

  #ponged() {
    this.#probeBy = 0;
    if (!this.#pingPending) return;
    this.#pingPending = false;
    this.#rtt = this.#now() - this.#pingSentAt;
    this.dispatchEvent(new PulseEvent('rtt', { rtt: this.#rtt }));
  }

  /**
   * The connection ended (closed by the server, failed, or judged dead):
   * reconnect if the code says so, else close for good. Offline, the wait
   * is for the online event instead of a backoff.
   * @param {number} code @param {string} reason
   */
  #lost(code, reason) {
    const stable = !!this.#session && this.#now() - this.#openedAt >= this.#opts.stableAfter;
    this.#drop(code === 4000 ? RULE.closeServerDead : RULE.closeOther, reason);
    if (!retryable(code)) {
      this.close(code, reason);
      return;
    }
    if (offline()) {
      this.dispatchEvent(new PulseEvent('close', { code, reason, willReconnect: true }));
      return this.#goOffline('offline');
    }
    if (stable) this.#attempt = 0;
    const spread = retryWindow(reason);
    const delay = spread > 0 ? Math.floor(Math.random() * (spread + 1))
      : backoff(this.#attempt, this.#opts.backoffBase, this.#opts.backoffCap);
    this.#attempt++;
    this.#retryAt = this.#now() + delay;
    this.#timers.dial = setTimeout(() => this.#dial(), delay);
    this.#setState('reconnecting', { code, reason, delay, retryAt: this.#retryAt });
    this.dispatchEvent(new PulseEvent('close', { code, reason, willReconnect: true, delay }));
  }

  /**
   * Forgets the current WebSocket and everything tied to it, closing it
   * with code (1000 or 3000-4999, what a browser may send; else 1000).
   * @param {number} code @param {string} reason
   */
  #drop(code, reason) {
    const ws = this.#ws;
    this.#ws = null;
    this.#session = '';
    this.#dialSeq++;
    this.#pingPending = false;
    this.#probeBy = 0;
    clearTimeout(this.#timers.dial);
    clearTimeout(this.#timers.check);
    clearInterval(this.#timers.check);
    clearTimeout(this.#timers.refresh);
    clearTimeout(this.#timers.pace);
    if (ws) {
      ws.onmessage = ws.onclose = ws.onerror = null;
      const sendable = code === 1000 || (code >= 3000 && code < 5000);
      try {
        ws.close(sendable ? code : 1000, reason.slice(0, 100));
      } catch {
        // already closed
      }
    }
    for (const p of this.#pending) p.sent = false;
    const replies = [...this.#replies.values()];
    this.#replies.clear();
    for (const reply of replies) reply({ type: 'error', code: 'disconnected', message: 'connection lost' });
  }

  /** Sends a request and resolves with its answer, rejects on an error. @param {Inbound} msg @returns {Promise<Inbound>} */
  #request(msg) {
    return new Promise((resolve, reject) => {
      const id = this.#nextId++;
      this.#replies.set(id, (m) => (m.type === 'error' ? reject(new PulseError(/** @type {any} */ (m))) : resolve(m)));
      this.#write({ ...msg, id });
    });
  }

  /** Writes one message on the current connection, if any. @param {object} msg */
  #write(msg) {
    if (!this.#ws || this.#ws.readyState !== 1) return false;
    this.#ws.send(JSON.stringify(msg));
    return true;
  }

  // ---- subscriptions ----

  /**
   * Subscribes sub on the current connection. A fresh subscription that
   * wants history first learns the channel's top (a peek), then subscribes
   * from history positions before it.
   * @param {Sub} sub
   * @param {Position|null} [from]  subscribe from here, whatever sub says
   */
  #sendSubscribe(sub, from = null) {
    const id = this.#nextId++;
    sub.reqId = id;
    sub.peek = !from && sub.history > 0 && sub.fresh && !sub.pos;
    let since = from || (sub.recover ? sub.pos : null);
    if (!from && since && sub.history > 0 && sub.fresh) since = { epoch: since.epoch, offset: Math.max(0, since.offset - sub.history) };
    sub.pos = since;
    /** @type {Inbound} */
    const msg = { type: 'subscribe', id, channel: sub.channel, presence: sub.presence && !sub.peek };
    if (since) msg.since = since;
    this.#replies.set(id, (m) => this.#subscribed(sub, id, m));
    this.#write(msg);
  }

  /** Handles the answer to sub's subscribe number id. @param {Sub} sub @param {number} id @param {Inbound} m */
  #subscribed(sub, id, m) {
    if (this.#subs.get(sub.channel) !== sub || sub.reqId !== id) return;
    if (m.type === 'error') {
      if (m.code !== 'disconnected') this.dispatchEvent(new PulseEvent('error', { ...m, channel: sub.channel }));
      return;
    }
    const refetch = sub.peek || (m.recovered === false && sub.history > 0);
    if (refetch) return this.#refetch(sub, m.position);
    sub.reqId = 0;
    if (!sub.pos || m.recovered === false) sub.pos = m.position;
    const detail = {
      channel: sub.channel, position: m.position, recovered: m.recovered, fresh: sub.fresh, refetched: sub.refetched,
    };
    sub.fresh = false;
    sub.refetched = false;
    this.#remember(sub);
    this.dispatchEvent(new PulseEvent('subscribed', detail));
  }

  /**
   * Subscribes sub again from history before top: after a peek, or when a
   * resume could not recover (then the subscribed event says refetched).
   * @param {Sub} sub @param {Position} top
   */
  #refetch(sub, top) {
    this.#write({ type: 'unsubscribe', id: this.#nextId++, channel: sub.channel });
    sub.refetched = !sub.peek;
    this.#sendSubscribe(sub, { epoch: top.epoch, offset: Math.max(0, top.offset - sub.history) });
  }

  /**
   * Delivers one publication, at most once and in order.
   * @param {string} channel @param {Position} pos @param {any} data @param {boolean} replayed @param {string} [from]
   */
  #deliver(channel, pos, data, replayed, from = '') {
    const sub = this.#subs.get(channel);
    if (!sub || sub.reqId || !pos) return;
    const last = sub.pos;
    if (last && last.epoch === pos.epoch && pos.offset <= last.offset) return; // seen
    sub.pos = pos;
    this.#remember(sub);
    this.dispatchEvent(new PulseMessageEvent(channel, data, pos, replayed, from || ''));
  }

  /** Stores sub's position for a reload. @param {Sub} sub */
  #remember(sub) {
    if (!sub.recover || !sub.pos) return;
    this.#stored.positions[sub.channel] = sub.pos;
    this.#saveSoon();
  }

  // ---- the send queue ----

  /**
   * Queues a publish and writes it if connected. First an unsent publish
   * of the same queueKey is replaced and expired ones are dropped; then a
   * full queue refuses this one.
   * @param {string} channel @param {any} data @param {SendOptions} o
   * @param {(a: Ack) => void} resolve @param {(e: Error) => void} reject
   * @returns {'sent'|'queued'}
   */
  #enqueue(channel, data, o, resolve, reject) {
    if (this.#state === 'closed') throw new PulseError({ code: 'closed', message: 'socket closed' });
    if (o.queueKey) this.#replace(o.queueKey);
    this.#expire();
    if (this.#pending.length >= this.#opts.queueSize) {
      throw new PulseError({ code: 'queue_full', message: `send queue full (${this.#pending.length} publishes waiting)` });
    }
    const key = o.key || `${this.#keyPrefix}-${++this.#keySeq}`;
    /** @type {Pending} */
    const p = {
      id: this.#nextId++, channel, data, key, queueKey: o.queueKey, at: this.#now(), sent: false, notBefore: 0, resolve, reject,
    };
    const waiting = this.#pending.some((q) => !q.sent && q.notBefore > this.#now()); // none overtakes it
    this.#pending.push(p);
    return this.#session && !waiting && this.#writePublish(p) ? 'sent' : 'queued';
  }

  /** Drops the unsent publishes of queueKey: latest per key. @param {string} queueKey */
  #replace(queueKey) {
    this.#pending = this.#pending.filter((p) => {
      if (p.queueKey !== queueKey || p.sent) return true;
      p.reject(new PulseError({ code: 'replaced', message: 'publish replaced by a later one with the same queueKey' }));
      return false;
    });
  }

  /** Drops the unsent publishes older than queueTTL. */
  #expire() {
    const now = this.#now();
    this.#pending = this.#pending.filter((p) => {
      if (p.sent || now - p.at <= this.#opts.queueTTL) return true;
      p.reject(new PulseError({ code: 'expired', message: 'publish expired in the send queue' }));
      return false;
    });
  }

  /** Writes p and waits for its ack. @param {Pending} p */
  #writePublish(p) {
    this.#replies.set(p.id, (m) => this.#acked(p, m));
    p.sent = this.#write({ type: 'publish', id: p.id, channel: p.channel, key: p.key, data: p.data });
    if (!p.sent) this.#replies.delete(p.id);
    return p.sent;
  }

  /**
   * Settles p with the server's answer. A publish refused as rate_limited
   * stays queued and is written again, with its key, after retry_after_ms
   * (after the one refused before it is due, when several were).
   * @param {Pending} p @param {Inbound} m
   */
  #acked(p, m) {
    if (m.type === 'error' && m.code === 'disconnected') return; // resent after the reconnect
    if (m.type === 'error' && m.code === 'rate_limited') {
      // Paced: several refused at once come back retry_after_ms apart.
      const now = this.#now();
      this.#paced = Math.max(this.#paced, now) + Math.max(1, Number(m.retry_after_ms) || 1000);
      p.sent = false;
      p.notBefore = this.#paced;
      this.#flush(); // arms the timer for the first one due
      return;
    }
    this.#pending = this.#pending.filter((q) => q !== p);
    if (m.type === 'error') p.reject(new PulseError(/** @type {any} */ (m)));
    else p.resolve({ pos: m.pos, duplicate: !!m.duplicate });
  }

  /**
   * Drops expired publishes and writes the others, oldest first, up to one
   * told to wait; for that one, a timer calls flush again when it is due
   * (again if the timer fired early on this clock).
   */
  #flush() {
    this.#expire();
    const now = this.#now();
    clearTimeout(this.#timers.pace);
    for (const p of this.#pending) {
      if (p.sent) continue;
      if (p.notBefore > now) {
        this.#timers.pace = setTimeout(() => { if (this.#session) this.#flush(); }, p.notBefore - now);
        return;
      }
      if (!this.#writePublish(p)) return;
    }
  }

  /** @param {State} state @param {object} [detail] */
  #setState(state, detail = {}) {
    const previous = this.#state;
    if (previous === state && state !== 'reconnecting') return;
    this.#state = state;
    this.dispatchEvent(new PulseEvent('statechange', { ...detail, state, previous }));
  }
}

/** @typedef {{-readonly [K in keyof typeof DEFAULTS]: number} & {client?: string, info?: any}} Resolved */

/**
 * The options with every default filled in: a number option that is not a
 * positive finite number takes its default; queueSize is a whole number.
 * @param {PulseOptions} options
 * @returns {Resolved}
 */
function resolve(options) {
  /** @type {Resolved} */
  const o = { ...DEFAULTS, client: options.client, info: options.info };
  for (const key of /** @type {Array<keyof typeof DEFAULTS>} */ (Object.keys(DEFAULTS))) {
    const v = options[key];
    if (typeof v === 'number' && Number.isFinite(v) && v > 0) o[key] = v;
  }
  o.queueSize = Math.max(1, Math.floor(o.queueSize));
  return o;
}

/** sessionStorage when the runtime has one, else null. @returns {Storage|null} */
function safeSessionStorage() {
  try {
    return globalThis.sessionStorage || null;
  } catch {
    return null; // storage disabled by the browser
  }
}

/** Whether the browser says it is offline (never true under Node). */
function offline() {
  return globalThis.navigator?.onLine === false;
}

/** A random hex id of 16 characters. */
function randomId() {
  const b = new Uint8Array(8);
  if (globalThis.crypto?.getRandomValues) globalThis.crypto.getRandomValues(b);
  else for (let i = 0; i < b.length; i++) b[i] = Math.floor(Math.random() * 256);
  return [...b].map((x) => x.toString(16).padStart(2, '0')).join('');
}
