// The arena: the server ticks at 25 Hz and publishes the whole state to
// "$game"; each player publishes its direction (and its RTT) to
// "game:input", whose presence is the list of players. The page draws the
// state it gets, interpolated between the last two ticks.
import { PulseSocket } from '/pulse.js';
import { socketURL, connectionBanner, statusPill, identity } from '/ui.js';

const STATE = '$game';
const INPUT = 'game:input';
const TICK_MS = 40;
const $ = (id) => document.getElementById(id);

const me = identity();
const ps = new PulseSocket(socketURL(), { client: me.nick, info: { color: me.color }, pingEvery: 1000, queueTTL: 1000 });
window.pulse = ps;
connectionBanner(ps, $('banner'));
statusPill(ps, $('status'));

let prev = null; // the state before last, for interpolation
let last = null;
let lastAt = 0;
let dir = { dx: 0, dy: 0 };

window.demo = { state: () => last }; // for the browser tests
ps.subscribe(STATE, { recover: false });
ps.subscribe(INPUT, { presence: true, recover: false });

ps.addEventListener('message', (e) => {
  if (e.channel !== STATE) return;
  prev = last;
  last = e.data;
  lastAt = performance.now();
  renderScores();
  $('tick').textContent = `tick ${last.tick}`;
});

/** Sends the direction now (only the latest is kept while offline). */
function sendInput() {
  if (!ps.member) return;
  ps.send(INPUT, { id: ps.member, dx: dir.dx, dy: dir.dy, rtt: Number.isNaN(ps.rtt) ? -1 : Math.round(ps.rtt * 10) / 10 }, { queueKey: 'input' });
}
ps.addEventListener('open', sendInput);
ps.addEventListener('rtt', sendInput); // keeps everyone's latency fresh

function setDir(dx, dy) {
  const n = Math.hypot(dx, dy);
  const next = n > 1 ? { dx: dx / n, dy: dy / n } : { dx, dy };
  if (Math.abs(next.dx - dir.dx) < 0.01 && Math.abs(next.dy - dir.dy) < 0.01) return;
  dir = next;
  sendInput();
}

const keys = new Set();
const KEYMAP = { ArrowLeft: [-1, 0], KeyA: [-1, 0], ArrowRight: [1, 0], KeyD: [1, 0], ArrowUp: [0, -1], KeyW: [0, -1], ArrowDown: [0, 1], KeyS: [0, 1] };
function fromKeys() {
  let dx = 0;
  let dy = 0;
  for (const k of keys) { dx += KEYMAP[k][0]; dy += KEYMAP[k][1]; }
  setDir(dx, dy);
}
window.addEventListener('keydown', (e) => { if (KEYMAP[e.code]) { keys.add(e.code); fromKeys(); e.preventDefault(); } });
window.addEventListener('keyup', (e) => { if (KEYMAP[e.code]) { keys.delete(e.code); fromKeys(); } });
window.addEventListener('blur', () => { keys.clear(); fromKeys(); });

// Touch or mouse: steer toward the pointer, relative to our disc.
const canvas = $('arena');
function steer(e) {
  const mine = last?.players.find((p) => p.id === ps.member);
  if (!mine) return;
  const r = canvas.getBoundingClientRect();
  const x = ((e.clientX - r.left) / r.width) * last.w;
  const y = ((e.clientY - r.top) / r.height) * last.h;
  const dx = x - mine.x;
  const dy = y - mine.y;
  const n = Math.hypot(dx, dy);
  setDir(n < 8 ? 0 : dx / n, n < 8 ? 0 : dy / n);
}
canvas.addEventListener('pointerdown', (e) => { canvas.setPointerCapture(e.pointerId); steer(e); });
canvas.addEventListener('pointermove', (e) => { if (e.buttons) steer(e); });
canvas.addEventListener('pointerup', () => setDir(0, 0));
canvas.addEventListener('pointercancel', () => setDir(0, 0));

function latency(p) {
  return p.rtt >= 0 ? `${p.rtt} ms` : '–';
}

function renderScores() {
  const players = [...last.players].sort((a, b) => b.score - a.score || a.name.localeCompare(b.name));
  $('scores').replaceChildren(...players.map((p) => {
    const li = document.createElement('li');
    li.dataset.id = p.id;
    li.classList.toggle('me', p.id === ps.member);
    const sw = Object.assign(document.createElement('span'), { className: 'swatch' });
    sw.style.background = p.color;
    li.append(sw,
      Object.assign(document.createElement('span'), { className: 'name', textContent: p.name }),
      Object.assign(document.createElement('span'), { className: 'score', textContent: String(p.score) }),
      Object.assign(document.createElement('span'), { className: 'lat', textContent: latency(p) }));
    return li;
  }));
}

/** Where p is now: between its place in prev and in last. */
function place(p, k) {
  const before = prev?.players.find((q) => q.id === p.id);
  if (!before) return p;
  return { x: before.x + (p.x - before.x) * k, y: before.y + (p.y - before.y) * k };
}

function draw() {
  requestAnimationFrame(draw);
  if (!last) return;
  const g = canvas.getContext('2d');
  const W = last.w;
  const H = last.h;
  if (canvas.width !== W) { canvas.width = W; canvas.height = H; }
  g.clearRect(0, 0, W, H);
  g.strokeStyle = '#161e2e';
  g.lineWidth = 1;
  for (let x = 0; x <= W; x += 60) { g.beginPath(); g.moveTo(x, 0); g.lineTo(x, H); g.stroke(); }
  for (let y = 0; y <= H; y += 60) { g.beginPath(); g.moveTo(0, y); g.lineTo(W, y); g.stroke(); }
  drawStar(g, last.star.x, last.star.y, performance.now());
  const k = Math.min(1, (performance.now() - lastAt) / TICK_MS);
  g.font = '600 14px system-ui, sans-serif';
  g.textAlign = 'center';
  for (const p of last.players) {
    const at = place(p, k);
    g.beginPath();
    g.arc(at.x, at.y, 16, 0, Math.PI * 2);
    g.fillStyle = p.color;
    g.fill();
    if (p.id === ps.member) { g.lineWidth = 3; g.strokeStyle = '#fff'; g.stroke(); }
    g.fillStyle = '#e6ebf5';
    g.fillText(p.name, at.x, at.y - 24);
    g.fillStyle = '#8d99b5';
    g.fillText(latency(p), at.x, at.y + 34);
  }
}

function drawStar(g, x, y, t) {
  const r = 12 + Math.sin(t / 200) * 1.5;
  g.beginPath();
  for (let i = 0; i < 10; i++) {
    const a = (Math.PI / 5) * i - Math.PI / 2;
    const rr = i % 2 ? r * 0.45 : r;
    g.lineTo(x + Math.cos(a) * rr, y + Math.sin(a) * rr);
  }
  g.closePath();
  g.fillStyle = '#ffd166';
  g.shadowColor = '#ffd166';
  g.shadowBlur = 14;
  g.fill();
  g.shadowBlur = 0;
}
requestAnimationFrame(draw);
