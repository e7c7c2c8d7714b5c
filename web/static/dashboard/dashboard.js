// The live dashboard: the server publishes {t, v: [four values]} to
// "$dashboard" ten times a second; each series is drawn over the last
// minute. After a reconnect pulse.js replays the gap from history, or,
// when the history is gone, refetches the last minute and says so.
import { PulseSocket } from '/pulse.js';
import { socketURL, connectionBanner, statusPill } from '/ui.js';

const CHANNEL = '$dashboard';
const WINDOW_MS = 60_000; // the longest span drawn
const MIN_SPAN_MS = 10_000; // the shortest, while data is young
const HISTORY = 600; // one minute at 10 Hz
const SERIES = [
  { name: 'Requests', unit: '/s', color: '#5b8cff', digits: 0 },
  { name: 'p99 latency', unit: 'ms', color: '#f5b83d', digits: 1 },
  { name: 'CPU', unit: '%', color: '#3ecf8e', digits: 1 },
  { name: 'Connections', unit: '', color: '#ff6b9a', digits: 0 },
];
const $ = (id) => document.getElementById(id);

const ps = new PulseSocket(socketURL(), { pingEvery: 2000 });
window.pulse = ps;
connectionBanner(ps, $('banner'));
statusPill(ps, $('status'));

/** @type {{t: number, v: number[]}[]} the samples, oldest first */
let samples = [];
let replayedSinceOpen = 0;
let arrivals = [];
let dirty = true;

const charts = SERIES.map((s) => {
  const card = document.createElement('section');
  card.className = 'chart card';
  card.innerHTML = '<div class="chart-head"><h2></h2><span class="value">–</span></div><canvas></canvas>';
  card.querySelector('h2').textContent = s.name;
  $('charts').append(card);
  return { ...s, value: card.querySelector('.value'), canvas: card.querySelector('canvas') };
});

function status(text, kind = '') {
  $('dash-status').textContent = text;
  $('dash-status').className = `muted ${kind}`;
}

ps.addEventListener('message', (e) => {
  if (e.channel !== CHANNEL || !Array.isArray(e.data?.v)) return;
  samples.push({ t: e.data.t, v: e.data.v });
  if (e.replayed) replayedSinceOpen++;
  else arrivals.push(performance.now());
  const oldest = e.data.t - WINDOW_MS - 2000;
  if (samples[0].t < oldest) samples = samples.filter((s) => s.t >= oldest);
  dirty = true;
});

ps.addEventListener('open', () => { replayedSinceOpen = 0; });

ps.addEventListener('subscribed', (e) => {
  if (e.detail.channel !== CHANNEL) return;
  if (e.detail.refetched) {
    samples = [];
    status('The server lost the history of the gap (it restarted): refetched the last minute.', 'refetched');
  } else if (e.detail.recovered === true && !e.detail.fresh) {
    // the batch follows the subscribed message: count it a moment later
    setTimeout(() => status(`Reconnected: gap filled from history (${replayedSinceOpen} samples).`, 'gap'), 300);
  } else {
    status('Live: 4 series at 10 Hz from the server.');
  }
  document.body.dataset.subscribed = String(Number(document.body.dataset.subscribed || 0) + 1);
});

ps.subscribe(CHANNEL, { history: HISTORY });
window.demo = { samples: () => samples }; // for the browser tests

/** Draws one series over the last minute, in CSS pixels scaled for the screen. */
function draw(chart, index, now) {
  const { canvas } = chart;
  const dpr = window.devicePixelRatio || 1;
  const w = canvas.clientWidth;
  const h = canvas.clientHeight;
  if (canvas.width !== Math.round(w * dpr) || canvas.height !== Math.round(h * dpr)) {
    canvas.width = Math.round(w * dpr);
    canvas.height = Math.round(h * dpr);
  }
  const g = canvas.getContext('2d');
  g.setTransform(dpr, 0, 0, dpr, 0, 0);
  g.clearRect(0, 0, w, h);
  const points = samples.filter((s) => s.t >= now - WINDOW_MS);
  if (points.length === 0) return;
  const span = Math.min(WINDOW_MS, Math.max(MIN_SPAN_MS, now - points[0].t));
  const values = points.map((s) => s.v[index]);
  let lo = Math.min(...values);
  let hi = Math.max(...values);
  const pad = (hi - lo) * 0.15 || 1;
  lo -= pad;
  hi += pad;
  const x = (t) => ((t - (now - span)) / span) * w;
  const y = (v) => h - 16 - ((v - lo) / (hi - lo)) * (h - 34);
  g.strokeStyle = '#243050';
  g.lineWidth = 1;
  g.fillStyle = '#8d99b5';
  g.font = '11px system-ui, sans-serif';
  for (let k = 0; k <= 2; k++) {
    const v = lo + ((hi - lo) * k) / 2;
    g.beginPath(); g.moveTo(0, y(v)); g.lineTo(w, y(v)); g.stroke();
    g.fillText(v.toFixed(chart.digits), 4, y(v) - 3);
  }
  g.fillText(`-${Math.round(span / 1000)} s`, 4, h - 3);
  g.fillText('now', w - 26, h - 3);
  const path = new Path2D();
  let gapStart = true;
  for (let i = 0; i < points.length; i++) {
    const gap = i > 0 && points[i].t - points[i - 1].t > 1500; // a hole in the data shows as one
    if (gapStart || gap) path.moveTo(x(points[i].t), y(values[i]));
    else path.lineTo(x(points[i].t), y(values[i]));
    gapStart = false;
  }
  const fill = g.createLinearGradient(0, 0, 0, h);
  fill.addColorStop(0, `${chart.color}44`);
  fill.addColorStop(1, `${chart.color}00`);
  const area = new Path2D(path);
  area.lineTo(x(points[points.length - 1].t), h - 16);
  area.lineTo(x(points[0].t), h - 16);
  g.fillStyle = fill;
  g.fill(area);
  g.strokeStyle = chart.color;
  g.lineWidth = 2;
  g.stroke(path);
  const last = values[values.length - 1];
  chart.value.innerHTML = '';
  chart.value.append(last.toFixed(chart.digits), Object.assign(document.createElement('span'), { className: 'unit', textContent: chart.unit }));
}

function frame() {
  if (dirty && samples.length) {
    const now = samples[samples.length - 1].t;
    charts.forEach((c, i) => draw(c, i, now));
    document.body.dataset.samples = String(samples.length);
    dirty = false;
  }
  const cut = performance.now() - 1000;
  arrivals = arrivals.filter((t) => t >= cut);
  $('rate').textContent = `${arrivals.length} samples/s`;
  requestAnimationFrame(frame);
}
requestAnimationFrame(frame);
window.addEventListener('resize', () => { dirty = true; });
