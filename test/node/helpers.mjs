// Helpers the Node tests share: a bounded wait, a real `pulse serve` named
// by PULSE_BIN, and PulseSocket events. Every wait is on an event and
// bounded by WAIT_MS or the bound given.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { once } from 'node:events';
import { PulseSocket } from '../../web/static/pulse.js';

export const WAIT_MS = 10_000; // bound on every wait for an event

/**
 * Resolves with what promise resolves with, or rejects after ms.
 * @template T
 * @param {Promise<T>} promise
 * @param {number} ms
 * @param {string} what  what was waited for, for the error
 * @returns {Promise<T>}
 */
export async function within(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** The pulse binary named by PULSE_BIN; throws a clear error without it. */
function pulseBin() {
  const bin = process.env.PULSE_BIN;
  if (!bin) {
    throw new Error('PULSE_BIN is not set: build the binary (go build -o pulse ./cmd/pulse) ' +
      'and run PULSE_BIN=./pulse node --experimental-websocket --test test/node/');
  }
  try {
    accessSync(bin, constants.X_OK);
  } catch (err) {
    throw new Error(`PULSE_BIN=${bin} is not an executable file: ${err.message}`);
  }
  if (typeof WebSocket !== 'function') {
    throw new Error('no global WebSocket: run node with --experimental-websocket');
  }
  return bin;
}

/**
 * Starts `pulse serve` on a free loopback port, with a 1 s ping interval,
 * pong timeout and drain window, and resolves once it has logged
 * `msg=listening addr=...`. The test's after hook stops it with SIGTERM
 * and checks that it exits 0.
 * @param {import('node:test').TestContext} t
 * @param {string[]} flags  flags after the common ones
 * @returns {Promise<{addr: string, url: string, proc: import('node:child_process').ChildProcess,
 *   exited: Promise<any[]>, log: () => string}>}
 */
export async function startServer(t, flags = []) {
  const args = ['serve', '--addr', '127.0.0.1:0', '--ping-interval', '1s', '--pong-timeout', '1s',
    '--drain-window', '1s', ...flags];
  const proc = spawn(pulseBin(), args, { stdio: ['ignore', 'ignore', 'pipe'] });
  const exited = once(proc, 'exit');
  t.after(() => stopServer(proc, exited));

  let log = '';
  let found;
  const listening = new Promise((resolve, reject) => {
    found = resolve;
    proc.on('error', reject);
    exited.then(([code, signal]) => reject(new Error(`pulse exited (${code ?? signal}) before listening:\n${log}`)));
  });
  proc.stderr.setEncoding('utf8');
  proc.stderr.on('data', (chunk) => { // read to the end, so the server never blocks on a full pipe
    log += chunk;
    const m = /\bmsg=listening addr=(\S+)/.exec(log);
    if (m) found(m[1]);
  });
  const addr = await within(listening, WAIT_MS, 'the msg=listening log line');
  return { addr, url: `ws://${addr}/ws`, proc, exited, log: () => log };
}

/**
 * Sends SIGTERM, unless the test has sent one (a second during the drain
 * kills pulse at once, as it should), and waits for a clean exit; kills
 * the process past the bound.
 */
async function stopServer(proc, exited) {
  if (proc.exitCode === null && proc.signalCode === null && !proc.killed) proc.kill('SIGTERM');
  try {
    const [code, signal] = await within(exited, WAIT_MS, 'pulse to exit after SIGTERM');
    assert.equal(code, 0, `pulse exited with ${code ?? signal} after SIGTERM, want 0`);
  } catch (err) {
    proc.kill('SIGKILL');
    throw err;
  }
}

/** Opens a PulseSocket (no storage unless options give one), closed after the test. */
export function open(t, url, options = {}) {
  const ps = new PulseSocket(url, { storage: null, ...options });
  t.after(() => ps.close());
  return ps;
}

/** Resolves with the first event of type on target for which pred holds. */
export function next(target, type, pred = () => true) {
  return within(new Promise((resolve) => {
    const on = (e) => { if (pred(e)) { target.removeEventListener(type, on); resolve(e); } };
    target.addEventListener(type, on);
  }), WAIT_MS, `event ${type}`);
}
