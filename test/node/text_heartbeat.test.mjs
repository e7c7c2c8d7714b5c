// The classic text heartbeat, as tutorials teach it, against a real
// `pulse serve`:
//
//   ws.onmessage = e => { if (e.data === 'ping') ws.send('pong') }
//
// A client written that way must stay connected for as long as it answers,
// and one that stops answering must be closed with 4000 (heartbeat timeout)
// after ping interval + pong timeout.
//
// Run, with the binary built by `go build -o pulse ./cmd/pulse`:
//
//   PULSE_BIN=./pulse node --experimental-websocket --test test/node/
//
// Node 20 has a global WebSocket behind --experimental-websocket; no npm
// packages are used. Every wait is on an event, bounded by a timeout.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { WAIT_MS, within, startServer } from './helpers.mjs';

const INTERVAL_MS = 1000; // --ping-interval 1s
const TIMEOUT_MS = 1000; // --pong-timeout 1s
const BOUND_MS = INTERVAL_MS + TIMEOUT_MS; // silence longer than this is death
const MARGIN_MS = 1500; // generous: one wheel tick is 100 ms

const CLOSE_HEARTBEAT_TIMEOUT = 4000;

/**
 * Opens a WebSocket and records what happens to it.
 * @param {import('node:test').TestContext} t
 * @param {string} url
 */
function connect(t, url) {
  const started = performance.now(); // before the server can have seen the connection
  const ws = new WebSocket(url);
  t.after(() => ws.close());
  const state = { ws, started, pings: 0, closeEvent: null };
  let pingWaiters = [];
  ws.addEventListener('message', (e) => {
    if (e.data !== 'ping') return;
    state.pings++;
    pingWaiters = pingWaiters.filter(({ n, resolve }) => (state.pings >= n ? (resolve(), false) : true));
  });
  const closed = new Promise((resolve) => ws.addEventListener('close', (e) => {
    state.closeEvent = { code: e.code, reason: e.reason, at: performance.now() };
    resolve(state.closeEvent);
  }));
  /** Resolves once n pings have arrived; rejects if the socket closes first. */
  state.pingsReached = (n) => new Promise((resolve, reject) => {
    if (state.pings >= n) return resolve();
    pingWaiters.push({ n, resolve });
    closed.then((c) => reject(new Error(`closed with ${c.code} ${c.reason} after ${state.pings} pings`)));
  });
  state.closed = closed;
  return state;
}

test('the classic snippet stays connected for 4 intervals', async (t) => {
  const server = await startServer(t, ['--heartbeat', 'text', '--log-level', 'info']);
  const client = connect(t, `ws://${server.addr}/ws`);
  const ws = client.ws;
  ws.onmessage = e => { if (e.data === 'ping') ws.send('pong') };

  // Pings come one interval apart: five of them span four intervals.
  await within(client.pingsReached(5), 5 * INTERVAL_MS + WAIT_MS, '5 pings');
  const elapsed = performance.now() - client.started;
  t.diagnostic(`5 pings answered over ${elapsed.toFixed(0)} ms`);
  assert.ok(elapsed >= 4 * INTERVAL_MS, `5 pings after only ${elapsed} ms`);
  assert.equal(ws.readyState, WebSocket.OPEN);
  assert.equal(client.closeEvent, null);
});

test('a client that ignores ping is closed with 4000 after interval + timeout', async (t) => {
  const server = await startServer(t, ['--heartbeat', 'text', '--log-level', 'info']);
  const client = connect(t, `ws://${server.addr}/ws`);

  const closed = await within(client.closed, BOUND_MS + WAIT_MS, 'the heartbeat timeout close');
  const after = closed.at - client.started;
  t.diagnostic(`closed with ${closed.code} "${closed.reason}" after ${after.toFixed(0)} ms and ${client.pings} unanswered pings`);
  assert.equal(closed.code, CLOSE_HEARTBEAT_TIMEOUT, `close code ${closed.code} "${closed.reason}"`);
  assert.ok(client.pings >= 1, 'no ping arrived before the close');
  assert.ok(after >= BOUND_MS, `closed after ${after} ms, before interval + timeout (${BOUND_MS} ms)`);
  assert.ok(after <= BOUND_MS + MARGIN_MS, `closed after ${after} ms, later than ${BOUND_MS} + ${MARGIN_MS} ms`);
});

test('?heartbeat=text chooses text pings on a frame-heartbeat server', async (t) => {
  const server = await startServer(t, ['--log-level', 'info']); // default: --heartbeat frame
  const client = connect(t, `ws://${server.addr}/ws?heartbeat=text`);
  const ws = client.ws;
  ws.onmessage = e => { if (e.data === 'ping') ws.send('pong') };

  await within(client.pingsReached(3), 3 * INTERVAL_MS + WAIT_MS, '3 text pings');
  t.diagnostic(`3 text pings after ${(performance.now() - client.started).toFixed(0)} ms`);
  assert.equal(ws.readyState, WebSocket.OPEN);
  assert.equal(client.closeEvent, null);
});
