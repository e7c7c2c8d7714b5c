// pulse.js's getToken against a real `pulse serve --jwt-secret` (see
// helpers.mjs for how the server is run): the token goes in the
// hello, a newer one in a refresh ahead of exp, a close with 4002 brings a
// new token, and 4100 is terminal. Every wait is on an event and bounded.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { refreshDelay } from '../../web/static/pulse.js';
import { WAIT_MS, within, startServer, open, next } from './helpers.mjs';

const SECRET = '0123456789abcdef0123456789abcdef';
const LEEWAY_S = 5; // the server's allowance for clock skew on exp

const b64url = (s) => Buffer.from(s).toString('base64url');

/** An HS256 JWT for sub, expiring expS seconds from now. */
function jwt(sub, expS, secret = SECRET) {
  const head = b64url(JSON.stringify({ alg: 'HS256', typ: 'JWT' }));
  const body = b64url(JSON.stringify({
    sub, exp: Math.floor(Date.now() / 1000) + expS, channels: ['room.*'], publish: ['room.*'],
  }));
  const sig = createHmac('sha256', secret).update(`${head}.${body}`).digest('base64url');
  return `${head}.${body}.${sig}`;
}

/** A WebSocket constructor that records what the client sends. */
function recordingNet() {
  const net = { sent: [] };
  net.WebSocket = class extends WebSocket {
    send(data) { net.sent.push(JSON.parse(data)); super.send(data); }
  };
  return net;
}

test('refreshDelay: a fifth of the life left, at most a minute early, null without exp', () => {
  const now = 1_000_000_000_000;
  const at = (expS) => `x.${b64url(JSON.stringify({ exp: expS }))}.y`;
  assert.equal(refreshDelay(at(now / 1000 + 100), now), 80_000);
  assert.equal(refreshDelay(at(now / 1000 + 3600), now), 3_540_000);
  assert.equal(refreshDelay(at(now / 1000 - 10), now), 0);
  assert.equal(refreshDelay('x.e30.y', now), null); // {}
  assert.equal(refreshDelay('junk', now), null);
});

test('getToken: the token goes in the hello, and its patterns rule', async (t) => {
  const { url } = await startServer(t, ['--jwt-secret', SECRET]);
  const net = recordingNet();
  const ps = open(t, url, { WebSocket: net.WebSocket, getToken: async () => jwt('ann', 3600) });
  await next(ps, 'open');
  ps.subscribe('room.1');
  await next(ps, 'subscribed');
  assert.equal(ps.user, 'ann');
  assert.ok(net.sent.some((m) => m.type === 'hello' && m.token), 'no hello with the token');
  ps.subscribe('lobby');
  const refused = await next(ps, 'error', (e) => e.detail.channel === 'lobby');
  assert.equal(refused.detail.code, 'forbidden');
  assert.equal(ps.state, 'open');
});

test('getToken: refreshed ahead of exp; a 4002 brings a new token', async (t) => {
  const { url } = await startServer(t, ['--jwt-secret', SECRET]);
  const net = recordingNet();
  let calls = 0;
  let failing = false;
  const getToken = () => {
    calls++;
    if (calls === 1) return jwt('ann', 2 - LEEWAY_S); // the server takes it for about 2 s
    if (failing) throw new Error('identity provider down');
    return jwt('ann', 3600);
  };
  const ps = open(t, url, { WebSocket: net.WebSocket, getToken });
  await next(ps, 'open');
  // Its exp has passed on the client's clock: the refresh comes at once.
  await within(new Promise((resolve) => {
    const poll = () => (net.sent.some((m) => m.type === 'refresh') ? resolve() : setTimeout(poll, 10));
    poll();
  }), WAIT_MS, 'a refresh');

  // Again, but now every refresh fails: the server closes with 4002, and
  // the client comes back with a new token.
  failing = true;
  calls = 0;
  ps.close();
  const again = open(t, url, { getToken });
  await next(again, 'open');
  const expired = await next(again, 'close');
  assert.equal(expired.detail.code, 4002);
  assert.equal(expired.detail.willReconnect, true);
  failing = false;
  await next(again, 'open');
  again.subscribe('room.1'); // answered after the hello's ack, which names the user
  await next(again, 'subscribed');
  assert.equal(again.user, 'ann');
  assert.ok(calls >= 3, `getToken called ${calls} times`);
});

test('getToken: a forged token is closed with 4100, for good', async (t) => {
  const { url } = await startServer(t, ['--jwt-secret', SECRET]);
  const ps = open(t, url, { getToken: () => jwt('mallory', 3600, 'x'.repeat(32)) });
  const closed = await next(ps, 'close');
  assert.equal(closed.detail.code, 4100);
  assert.equal(closed.detail.willReconnect, false);
  assert.equal(ps.state, 'closed');
});
