// pulse.js against the client rule: the numbers in
// testdata/client-rule.json, which the Go client (client/rule_test.go) and
// PROTOCOL.md's section "Client rule" are checked against too. No server:
// a fake WebSocket that the test drives, and a clock the test moves.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import {
  PulseSocket, PulseError, DEFAULTS, RULE, livenessBounds, retryWindow, backoff,
} from '../../web/static/pulse.js';

const rule = JSON.parse(readFileSync(new URL('../../testdata/client-rule.json', import.meta.url), 'utf8'));

/** A WebSocket the test drives: it opens when told, and records its close. */
class FakeWebSocket {
  static made = [];
  constructor(url, protocol) {
    this.url = url;
    this.protocol = protocol;
    this.readyState = 0;
    this.sent = [];
    this.closedWith = null;
    FakeWebSocket.made.push(this);
  }
  send(data) { this.sent.push(JSON.parse(data)); }
  close(code, reason) { this.closedWith = { code, reason }; this.readyState = 3; }
  /** Plays one server message. */
  serve(msg) { this.onmessage?.({ data: JSON.stringify(msg) }); }
  welcome(interval, timeout) {
    this.readyState = 1;
    this.serve({ type: 'welcome', session: 'a'.repeat(32), member_id: 'b'.repeat(16), interval_ms: interval, timeout_ms: timeout });
  }
}

/** A socket on a fake WebSocket and a clock the test sets; closed after the test. */
function fakeSocket(t, options = {}) {
  const clock = { ms: 1000 };
  FakeWebSocket.made = [];
  const ps = new PulseSocket('ws://fake/ws', { WebSocket: FakeWebSocket, storage: null, now: () => clock.ms, ...options });
  t.after(() => ps.close());
  return { ps, clock, ws: () => FakeWebSocket.made.at(-1) };
}

test('the defaults are the client rule', () => {
  assert.equal(DEFAULTS.connectTimeout, rule.handshake_timeout_ms);
  assert.equal(DEFAULTS.backoffBase, rule.backoff_base_ms);
  assert.equal(DEFAULTS.backoffCap, rule.backoff_cap_ms);
  assert.equal(DEFAULTS.stableAfter, rule.stable_after_ms);
  assert.equal(DEFAULTS.queueSize, rule.queue_size);
  assert.equal(DEFAULTS.queueTTL, rule.queue_ttl_ms);
  assert.equal(RULE.degradedGraceDivisor, rule.degraded_grace_divisor);
  assert.equal(RULE.degradedGraceMax, rule.degraded_grace_max_ms);
  assert.equal(RULE.retryWindowMax, rule.retry_window_max_ms);
  assert.equal(RULE.queueFull, rule.queue_full);
  assert.equal(RULE.closeServerDead, rule.close_code_server_dead);
  assert.equal(RULE.closeOther, rule.close_code_other);
});

test('degraded and lost follow the rule\'s examples', () => {
  for (const e of rule.liveness_examples) {
    assert.deepEqual(livenessBounds(e.interval_ms, e.timeout_ms),
      { degradedAfter: e.degraded_after_ms, lostAfter: e.lost_after_ms }, JSON.stringify(e));
  }
});

test('retry windows follow the rule\'s examples; the backoff stays within [0, min(cap, base*2^n)]', () => {
  for (const e of rule.retry_examples) assert.equal(retryWindow(e.reason), e.window_ms, e.reason);
  const { backoff_base_ms: base, backoff_cap_ms: cap } = rule;
  assert.equal(backoff(0, base, cap, () => 0), 0);
  assert.equal(backoff(0, base, cap, () => 0.99999), base);
  assert.equal(backoff(60, base, cap, () => 0.99999), cap);
});

test('the socket degrades, probes, and is lost at the rule\'s bounds', async (t) => {
  const { ps, clock, ws } = fakeSocket(t);
  const [{ interval_ms: interval, timeout_ms: timeout, degraded_after_ms: degraded, lost_after_ms: lost }] = rule.liveness_examples;
  ws().welcome(interval, timeout);
  assert.equal(ps.state, 'open');
  const heard = clock.ms;
  clock.ms = heard + degraded - 1;
  await new Promise((resolve) => setTimeout(resolve, 60)); // a few checks at this time
  assert.equal(ps.state, 'open');
  clock.ms = heard + degraded;
  await new Promise((resolve) => ps.addEventListener('statechange', resolve, { once: true }));
  assert.equal(ps.state, 'degraded');
  assert.equal(ws().sent.at(-1).type, 'ping', 'no probe when degraded');
  const judged = ws();
  clock.ms = heard + lost;
  const closed = await new Promise((resolve) => ps.addEventListener('close', resolve, { once: true }));
  assert.equal(closed.detail.code, 4000);
  assert.equal(judged.closedWith.code, rule.close_code_server_dead, 'close code sent when the server is judged dead');
});

test('a full queue refuses the new publish and keeps the queued ones', (t) => {
  assert.equal(rule.queue_full, 'refuse_new');
  const { ps } = fakeSocket(t, { queueSize: 2 });
  const first = ps.publish('q', 1);
  let firstFailed = null;
  first.ack.catch((err) => { firstFailed = err; });
  assert.equal(ps.send('q', 2), 'queued');
  assert.throws(() => ps.send('q', 3), (err) => err instanceof PulseError && err.code === 'queue_full');
  assert.throws(() => ps.publish('q', 4), (err) => err instanceof PulseError && err.code === 'queue_full');
  return Promise.resolve().then(() => assert.equal(firstFailed, null, 'the oldest publish was dropped'));
});

test('every other end sends the rule\'s other code', async (t) => {
  const { ps, ws } = fakeSocket(t, { connectTimeout: 20, backoffBase: 1 });
  const unwelcomed = ws();
  await new Promise((resolve) => ps.addEventListener('close', resolve, { once: true }));
  assert.equal(unwelcomed.closedWith.code, rule.close_code_other, 'no welcome in time');
  await new Promise((resolve) => ps.addEventListener('statechange', resolve, { once: true })); // the redial
  ws().welcome(25_000, 10_000);
  const sock = ws();
  ps.close();
  assert.equal(sock.closedWith.code, rule.close_code_other, 'closed by the app');
});

test('options that are not positive finite numbers take the rule\'s defaults', (t) => {
  const { ps } = fakeSocket(t, { queueSize: Infinity, queueTTL: undefined, backoffCap: -1 });
  for (let i = 0; i < rule.queue_size; i++) ps.send('q', i);
  assert.throws(() => ps.send('q', 'one more'), (err) => err.code === 'queue_full', 'queueSize Infinity is unbounded');
});
