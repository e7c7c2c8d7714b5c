// Helpers shared by the demo pages: the socket URL, the connection banner,
// the status pill, and a stored nickname.

/** The pulse endpoint on this page's origin. */
export function socketURL() {
  return `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws`;
}

/**
 * Shows the connection's state in the banner element: "Reconnecting in 3 s...
 * [Reconnect now]" while waiting, "Offline: waiting for the network..."
 * (and no button: nothing can be done) from the moment the browser says it
 * is offline, nothing while open. Its data-state attribute mirrors the
 * socket's state.
 * @param {import('./pulse.js').PulseSocket} ps
 * @param {HTMLElement} banner
 */
export function connectionBanner(ps, banner) {
  const text = document.createElement('span');
  const now = document.createElement('button');
  now.className = 'ghost';
  now.textContent = 'Reconnect now';
  now.addEventListener('click', () => ps.reconnectNow());
  banner.replaceChildren(text, now);
  const render = () => {
    banner.dataset.state = ps.state;
    const waiting = ps.retryAt - performance.now();
    /** @type {Record<string, string>} */
    const lines = {
      connecting: 'Connecting...',
      degraded: 'Connection is slow: the server has not answered for a while...',
      reconnecting: waiting > 0 ? `Reconnecting in ${Math.ceil(waiting / 1000)} s...` : 'Reconnecting...',
      offline: 'Offline: waiting for the network...',
      closed: 'Disconnected.',
    };
    text.textContent = lines[ps.state] || '';
    now.hidden = ps.state !== 'reconnecting' && ps.state !== 'degraded';
    banner.classList.toggle('show', ps.state !== 'open');
  };
  ps.addEventListener('statechange', render);
  setInterval(render, 250);
  render();
}

/**
 * Keeps a pill showing the state dot and the last RTT.
 * @param {import('./pulse.js').PulseSocket} ps
 * @param {HTMLElement} pill  holds a .dot and a #rtt
 */
export function statusPill(ps, pill) {
  const dot = pill.querySelector('.dot');
  const rtt = pill.querySelector('#rtt');
  const render = () => {
    dot.dataset.state = ps.state;
    rtt.textContent = ps.state === 'open' || ps.state === 'degraded'
      ? (Number.isNaN(ps.rtt) ? ps.state : `RTT ${ps.rtt.toFixed(ps.rtt < 10 ? 1 : 0)} ms`)
      : ps.state;
  };
  ps.addEventListener('statechange', render);
  ps.addEventListener('rtt', render);
  render();
}

const adjectives = ['brisk', 'calm', 'keen', 'lucky', 'merry', 'quiet', 'swift', 'witty', 'bold', 'sunny'];
const animals = ['otter', 'lynx', 'heron', 'panda', 'fox', 'koala', 'gecko', 'puffin', 'yak', 'wren'];
const palette = ['#ff6b6b', '#f7b731', '#3ecf8e', '#4bcffa', '#a55eea', '#ff9ff3', '#5b8cff', '#26de81', '#fd9644', '#2bcbba'];

function pick(list) { return list[Math.floor(Math.random() * list.length)]; }

/** The nickname and color of this tab, made up once and kept in sessionStorage. */
export function identity() {
  let me = null;
  try { me = JSON.parse(sessionStorage.getItem('pulse-demo:me') || 'null'); } catch { me = null; }
  if (!me || typeof me.nick !== 'string') {
    me = { nick: `${pick(adjectives)}-${pick(animals)}`, color: pick(palette) };
  }
  saveIdentity(me);
  return me;
}

/** Stores the identity for a reload. */
export function saveIdentity(me) {
  try { sessionStorage.setItem('pulse-demo:me', JSON.stringify(me)); } catch { /* storage off */ }
}
