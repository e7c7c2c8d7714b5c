// pulse.js (web/static/pulse.js) under Node's test runner, against a real
// `pulse serve` built by scripts/test.sh and named by PULSE_BIN:
//
//   PULSE_BIN=./pulse node --experimental-websocket --test test/node/
//
// The server runs with a 1 s ping interval and a 1 s pong timeout, so a
// silent server is judged dead after 2 s. Silence is made by a WebSocket
// wrapper injected into PulseSocket (the `mute` switch below): it drops
// every frame in both directions without closing the socket, as a network
// that silently lost the connection does. Every wait is on an event and
// bounded.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import {
  PulseSocket, PulseError, CLOSE_CODES, retryable, retryWindow, backoff,
} from '../../web/static/pulse.js';
import { WAIT_MS, within, startServer, open as openSocket, next } from './helpers.mjs';

const BOUND_MS = 2000; // --ping-interval 1s + --pong-timeout 1s

/** A Storage in memory, like sessionStorage. */
class MemoryStorage {
  constructor() { this.m = new Map(); }
  getItem(k) { return this.m.has(k) ? this.m.get(k) : null; }
  setItem(k, v) { this.m.set(k, String(v)); }
  removeItem(k) { this.m.delete(k); }
}

/**
 * A WebSocket constructor whose sockets go silent while net.muted is set:
 * nothing is sent, and no message or close event reaches the client.
 */
function mutableNet() {
  const net = { muted: false, sockets: [], lastInbound: 0 };
  net.WebSocket = class extends WebSocket {
    constructor(url, protocols) {
      super(url, protocols);
      net.sockets.push(this);
      this.addEventListener('message', (e) => {
        if (net.muted) e.stopImmediatePropagation();
        else net.lastInbound = performance.now();
      });
    }
    set onmessage(f) { this.addEventListener('message', (e) => { if (!net.muted && f) f(e); }); }
    set onclose(f) { this.addEventListener('close', (e) => { if (!net.muted && f) f(e); }); }
    send(data) { if (!net.muted) super.send(data); }
  };
  return net;
}

/** Opens a PulseSocket on a MemoryStorage, closed after the test. */
function open(t, url, options = {}) {
  return openSocket(t, url, { storage: new MemoryStorage(), ...options });
}

/** Collects the message events of ps, by channel. */
function inbox(ps) {
  const got = [];
  ps.addEventListener('message', (e) => got.push(e));
  got.waitFor = (n) => within(new Promise((resolve) => {
    const poll = () => (got.length >= n ? resolve(got) : setTimeout(poll, 10));
    poll();
  }), WAIT_MS, `${n} messages (have ${got.length})`);
  return got;
}

test('close codes, retry window and backoff match PROTOCOL.md', () => {
  const doc = readFileSync(new URL('../../PROTOCOL.md', import.meta.url), 'utf8');
  const rows = [...doc.matchAll(/^\| (\d{4}) \| ([^|]+?) \| [^|]+ \| ([^|]+?) \|$/gm)];
  assert.ok(rows.length >= 14, `found ${rows.length} close codes in PROTOCOL.md`);
  const documented = Object.fromEntries(rows.map(([, code, name, should]) =>
    [code, { name, retry: !should.startsWith('not ') }]));
  assert.deepEqual({ ...CLOSE_CODES }, documented);
  assert.equal(retryable(4050), true);
  assert.equal(retryable(4100), false);
  assert.equal(retryable(3000), false);
  assert.equal(retryWindow('server restart retry=5000'), 5000);
  assert.equal(retryWindow('retry=12'), 12);
  assert.equal(retryWindow('no window'), 0);
  assert.equal(backoff(0, 500, 15_000, () => 0.999), 500);
  assert.equal(backoff(3, 500, 15_000, () => 0.5), 2000);
  assert.equal(backoff(40, 500, 15_000, () => 0.999), 14_985);
});

test('open, subscribe, publish with ack, presence and RTT', async (t) => {
  const { url } = await startServer(t);
  const ann = open(t, url, { client: 'ann', info: { color: '#e91e63' } });
  const bob = open(t, url, { client: 'bob' });
  assert.equal(ann.state, 'connecting');
  const opened = await next(ann, 'open');
  assert.equal(ann.state, 'open');
  assert.equal(ann.interval, 1000);
  assert.equal(ann.timeout, 1000);
  assert.match(opened.detail.session, /^[0-9a-f]{32}$/);
  assert.match(opened.detail.member, /^[0-9a-f]{16}$/);
  await next(ann, 'rtt');
  assert.ok(ann.rtt >= 0 && ann.rtt < 1000, `rtt ${ann.rtt}`);

  const bobGot = inbox(bob);
  bob.subscribe('room:a', { presence: true });
  await next(bob, 'subscribed');
  const joined = next(bob, 'join', (e) => e.detail.member.client === 'ann');
  ann.subscribe('room:a', { presence: true });
  await next(ann, 'subscribed');
  await joined;
  const members = await ann.presence('room:a');
  assert.deepEqual(members.map((m) => m.client).sort(), ['ann', 'bob']);

  const { status, ack } = ann.publish('room:a', { text: 'hi' }, { key: 'k1' });
  assert.equal(status, 'sent');
  const first = await ack;
  assert.equal(first.duplicate, false);
  const again = await ann.publish('room:a', { text: 'hi' }, { key: 'k1' }).ack;
  assert.deepEqual(again, { pos: first.pos, duplicate: true });
  await bobGot.waitFor(1);
  assert.deepEqual(bobGot.map((e) => e.data), [{ text: 'hi' }]);
  assert.equal(bobGot[0].replayed, false);
  assert.equal(bobGot[0].from, ann.member); // set by the server, not by ann

  const left = next(bob, 'leave', (e) => e.detail.member.client === 'ann');
  ann.close();
  assert.equal(ann.state, 'closed');
  await left;
});

test('publishes refused as rate_limited are sent again, in order, after retry_after_ms', async (t) => {
  const { url } = await startServer(t, ['--publish-rate', '20', '--publish-burst', '2']);
  const reader = open(t, url);
  const got = inbox(reader);
  reader.subscribe('limited');
  await next(reader, 'subscribed');
  const ps = open(t, url);
  await next(ps, 'open');
  const acks = [0, 1, 2, 3, 4, 5].map((n) => ps.publish('limited', n).ack);
  const positions = (await within(Promise.all(acks), WAIT_MS, 'every ack')).map((a) => a.pos.offset);
  assert.deepEqual(positions, [1, 2, 3, 4, 5, 6]);
  await got.waitFor(6);
  assert.deepEqual(got.map((e) => e.data), [0, 1, 2, 3, 4, 5]);
});

test('a publish to a $ channel is refused', async (t) => {
  const { url } = await startServer(t);
  const ps = open(t, url);
  await next(ps, 'open');
  await assert.rejects(ps.publish('$dashboard', 1).ack, (err) => err.code === 'forbidden');
});

test('sends while connecting are queued, bounded, and latest per key', async (t) => {
  const { url } = await startServer(t);
  const reader = open(t, url);
  const got = inbox(reader);
  reader.subscribe('q');
  await next(reader, 'subscribed');

  const ps = open(t, url, { queueSize: 3 });
  const first = ps.publish('q', 'first');
  assert.equal(first.status, 'queued');
  const replaced = ps.publish('q', 'move-1', { queueKey: 'move' });
  assert.equal(ps.send('q', 'move-2', { queueKey: 'move' }), 'queued'); // replaces move-1
  await assert.rejects(replaced.ack, (err) => err.code === 'replaced');
  ps.send('q', 'second');
  // Full: the new publish is refused, loudly; the queued ones stay.
  assert.throws(() => ps.send('q', 'third'), (err) => err instanceof PulseError && err.code === 'queue_full');
  assert.throws(() => ps.publish('q', 'fourth'), (err) => err.code === 'queue_full');
  await next(ps, 'open');
  await first.ack;
  await got.waitFor(3);
  assert.deepEqual(got.map((e) => e.data), ['first', 'move-2', 'second']);
  assert.equal(ps.send('q', 'live'), 'sent');
});

test('a silent server is detected by the bound, and the reconnect resumes', async (t) => {
  const { url } = await startServer(t);
  const net = mutableNet();
  const ps = open(t, url, { WebSocket: net.WebSocket, backoffBase: 100 });
  const got = inbox(ps);
  ps.subscribe('feed');
  await next(ps, 'subscribed');
  const writer = open(t, url);
  await next(writer, 'open');
  await writer.publish('feed', 1).ack;
  await got.waitFor(1);

  net.muted = true;
  await writer.publish('feed', 2).ack; // missed: the socket is silent
  await writer.publish('feed', 3).ack;
  const closed = await next(ps, 'close');
  const after = performance.now() - net.lastInbound;
  t.diagnostic(`judged dead after ${after.toFixed(0)} ms of silence: ${closed.detail.code} ${closed.detail.reason}`);
  assert.deepEqual([closed.detail.code, closed.detail.reason], [4000, 'server silent']);
  assert.equal(closed.detail.willReconnect, true);
  assert.ok(after >= BOUND_MS && after <= BOUND_MS + 1000, `judged dead after ${after} ms of silence`);
  assert.equal(ps.state, 'reconnecting');

  net.muted = false;
  const resumed = await next(ps, 'subscribed');
  assert.equal(resumed.detail.recovered, true);
  await writer.publish('feed', 4).ack;
  await got.waitFor(4);
  assert.deepEqual(got.map((e) => [e.data, e.replayed]), [[1, false], [2, true], [3, true], [4, false]]);
  assert.equal(net.sockets.length, 2);
});

test('an unacknowledged publish is resent once, with its key', async (t) => {
  const { url } = await startServer(t);
  const net = mutableNet();
  const ps = open(t, url, { WebSocket: net.WebSocket, backoffBase: 100 });
  const got = inbox(ps);
  ps.subscribe('once');
  await next(ps, 'subscribed');
  net.muted = true;
  const { status, ack } = ps.publish('once', 'x');
  assert.equal(status, 'sent'); // written, but the network ate it
  await next(ps, 'close');
  net.muted = false;
  const res = await within(ack, WAIT_MS, 'the ack after the reconnect');
  assert.equal(res.duplicate, false);
  await got.waitFor(1);
  assert.deepEqual(got.map((e) => e.data), ['x']);
});

test('a reload resumes from the positions in storage; history fills a fresh start', async (t) => {
  const { url } = await startServer(t);
  const writer = open(t, url);
  await next(writer, 'open');
  for (let i = 1; i <= 5; i++) await writer.publish('log', i).ack;

  const storage = new MemoryStorage();
  const first = open(t, url, { storage });
  const got1 = inbox(first);
  first.subscribe('log', { history: 3 });
  await got1.waitFor(3);
  assert.deepEqual(got1.map((e) => e.data), [3, 4, 5]);
  const id = first.clientId;
  first.close(); // the page goes away

  for (let i = 6; i <= 7; i++) await writer.publish('log', i).ack;
  const second = open(t, url, { storage }); // the reload
  assert.equal(second.clientId, id);
  const got2 = inbox(second);
  second.subscribe('log');
  const sub = await next(second, 'subscribed');
  assert.equal(sub.detail.recovered, true);
  await got2.waitFor(2);
  assert.deepEqual(got2.map((e) => [e.data, e.replayed]), [[6, true], [7, true]]);
});

test('a reload continues the session: presence sees the same member come back', async (t) => {
  const { url } = await startServer(t);
  const watcher = open(t, url, { client: 'watcher' });
  watcher.subscribe('lobby', { presence: true });
  await next(watcher, 'subscribed');

  const storage = new MemoryStorage();
  const first = open(t, url, { storage, client: 'ann' });
  await next(first, 'open');
  const member = first.member;
  const joined = next(watcher, 'join', (e) => e.detail.member.client === 'ann');
  first.subscribe('lobby', { presence: true });
  assert.equal((await joined).detail.member.id, member);
  const left = next(watcher, 'leave', (e) => e.detail.member.id === member);
  first.close(); // the page goes away
  await left;

  const second = open(t, url, { storage, client: 'ann' }); // the reload
  const rejoined = next(watcher, 'join', (e) => e.detail.member.client === 'ann');
  second.subscribe('lobby', { presence: true });
  await next(second, 'subscribed');
  assert.equal(second.member, member);
  assert.equal((await rejoined).detail.member.id, member);
});

test('a terminal close code stops reconnecting', async (t) => {
  const { url } = await startServer(t, ['--max-message-size', '1024']);
  const ps = open(t, url);
  await next(ps, 'open');
  ps.send('big', 'x'.repeat(4096));
  const closed = await next(ps, 'close');
  assert.equal(closed.detail.code, 1009);
  assert.equal(closed.detail.willReconnect, false);
  assert.equal(ps.state, 'closed');
});

test('a server restart closes with a retry window that bounds the reconnect delay', async (t) => {
  const { url, proc } = await startServer(t);
  const ps = open(t, url);
  await next(ps, 'open');
  proc.kill('SIGTERM');
  const closed = await next(ps, 'close');
  assert.equal(closed.detail.code, 1012);
  assert.equal(closed.detail.willReconnect, true);
  assert.ok(closed.detail.delay >= 0 && closed.detail.delay <= 1000, `delay ${closed.detail.delay}`);
  ps.close();
});

test('a position the server cannot resume from is refetched from history and said so', async (t) => {
  const { url } = await startServer(t);
  const writer = open(t, url);
  await next(writer, 'open');
  for (let i = 1; i <= 4; i++) await writer.publish('news', i).ack;

  // A reload after a server restart: the stored epoch is gone.
  const storage = new MemoryStorage();
  const probe = new PulseSocket(url, { storage });
  const [key] = storage.m.keys();
  probe.close();
  storage.setItem(key, JSON.stringify({ id: 'c0ffee', positions: { news: { epoch: 'gone', offset: 3 } } }));

  const ps = open(t, url, { storage });
  const got = inbox(ps);
  ps.subscribe('news', { history: 2 });
  const sub = await next(ps, 'subscribed');
  assert.equal(sub.detail.refetched, true);
  await got.waitFor(2);
  assert.deepEqual(got.map((e) => [e.data, e.replayed]), [[3, true], [4, true]]);
  assert.equal(ps.clientId, 'c0ffee');
});

/** Gives the test a browser-like window, document and navigator; removed after it. */
function fakePage(t) {
  const page = { window: new EventTarget(), document: new EventTarget(), navigator: { onLine: true } };
  page.document.visibilityState = 'visible';
  for (const [name, value] of Object.entries(page)) {
    Object.defineProperty(globalThis, name, { value, configurable: true, writable: true });
  }
  t.after(() => { for (const name of Object.keys(page)) delete globalThis[name]; });
  return page;
}

/** A fake page, a server, and a socket on a mutableNet, open. */
async function openOnPage(t, options = {}) {
  const page = fakePage(t);
  const { url } = await startServer(t);
  const net = mutableNet();
  const ps = open(t, url, { WebSocket: net.WebSocket, ...options });
  await next(ps, 'open');
  return { page, net, ps };
}

/** Brings the page back online: the online event dials at once, and the session resumes. */
async function comeOnline(page, net, ps) {
  page.navigator.onLine = true;
  const opened = next(ps, 'open');
  page.window.dispatchEvent(new Event('online'));
  assert.equal(net.sockets.length, 2, 'the online event did not dial at once');
  assert.equal((await opened).detail.resumed, true);
}

test('no dial while the browser is offline; online dials at once', async (t) => {
  const { page, net, ps } = await openOnPage(t, { backoffBase: 50 });
  page.navigator.onLine = false;
  net.muted = true;
  await next(ps, 'statechange', (e) => e.detail.offline === true);
  assert.equal(ps.state, 'offline');
  assert.equal(net.sockets.length, 1, 'dialled while offline');

  net.muted = false;
  await comeOnline(page, net, ps);
});

test('pageshow and visibilitychange probe the connection: no pong within timeout is death', async (t) => {
  const { page, net, ps } = await openOnPage(t, { backoffBase: 50 });
  await next(ps, 'rtt');

  page.document.dispatchEvent(new Event('visibilitychange')); // alive: the probe is answered
  await next(ps, 'rtt');
  assert.equal(ps.state, 'open');

  net.muted = true;
  const start = performance.now();
  page.window.dispatchEvent(new Event('pageshow'));
  const closed = await next(ps, 'close');
  const after = performance.now() - start;
  t.diagnostic(`probe judged the connection dead after ${after.toFixed(0)} ms`);
  assert.equal(closed.detail.reason, 'probe unanswered');
  assert.ok(after >= 1000 && after < BOUND_MS, `probe verdict after ${after} ms, want within [timeout, interval + timeout)`);
});

/** Records each statechange of ps, as it happens. */
function states(ps) {
  const seen = [];
  ps.addEventListener('statechange', (e) => seen.push(e.detail.state));
  return seen;
}

test('the offline event leaves open at once; online dials at once', async (t) => {
  const { page, net, ps } = await openOnPage(t, { backoffBase: 50 });
  page.navigator.onLine = false;
  page.window.dispatchEvent(new Event('offline'));
  assert.equal(ps.state, 'offline', 'still open after the offline event');
  assert.ok(net.sockets[0].readyState >= 2, 'the socket of the lost network stays open'); // CLOSING

  await comeOnline(page, net, ps);
});

test('waking while offline says offline at once, with no countdown first', async (t) => {
  const { page, net, ps } = await openOnPage(t);
  // The laptop slept; the network went while no event could run.
  net.muted = true;
  page.navigator.onLine = false;
  const seen = states(ps);
  page.document.dispatchEvent(new Event('visibilitychange'));
  assert.deepEqual(seen, ['offline']);
  assert.equal(ps.retryAt, 0, 'a countdown is planned while offline');
});

for (const [leave, back, on] of [['freeze', 'resume', 'document'], ['pagehide', 'pageshow', 'window']]) {
  test(`${leave} closes at once (1000) so presence drops at once; ${back} comes back as the same member`, async (t) => {
    const { url } = await startServer(t);
    const watcher = open(t, url, { client: 'watcher' }); // another page: made before this one
    watcher.subscribe('lobby', { presence: true });
    await next(watcher, 'subscribed');
    const page = fakePage(t);
    const net = mutableNet();
    const closes = [];
    const WS = class extends net.WebSocket {
      close(code, reason) { closes.push(code); super.close(code, reason); }
    };
    const ps = open(t, url, { WebSocket: WS, client: 'ann' });
    const joined = next(watcher, 'join', (e) => e.detail.member.client === 'ann');
    ps.subscribe('lobby', { presence: true });
    const member = (await joined).detail.member.id;

    const left = next(watcher, 'leave', (e) => e.detail.member.id === member);
    const start = performance.now();
    page[on].dispatchEvent(new Event(leave));
    await left;
    const after = performance.now() - start;
    t.diagnostic(`left presence ${after.toFixed(0)} ms after ${leave}`);
    assert.ok(after < BOUND_MS / 2, `left ${after} ms after ${leave}: not at once`);
    assert.deepEqual(closes, [1000]);
    assert.notEqual(ps.state, 'open');

    const rejoined = next(watcher, 'join', (e) => e.detail.member.client === 'ann');
    page[on].dispatchEvent(new Event(back));
    assert.equal((await rejoined).detail.member.id, member);
    assert.equal(ps.state, 'open');
  });
}

test('endSession forgets the session: storage is cleared and stays clear', async (t) => {
  const page = fakePage(t);
  const { url } = await startServer(t);
  const storage = new MemoryStorage();
  const first = open(t, url, { storage });
  await next(first, 'open');
  const member = first.member;
  assert.equal(storage.m.size, 1);
  first.endSession();
  assert.equal(first.state, 'closed');
  assert.equal(storage.m.size, 0, 'endSession left the session in storage');
  page.window.dispatchEvent(new Event('pagehide')); // the page unloads
  assert.equal(storage.m.size, 0, 'the session was written back on unload');

  const second = open(t, url, { storage }); // the reload
  await next(second, 'open');
  assert.notEqual(second.member, member);
  assert.notEqual(second.clientId, first.clientId);
});
