// The chat demo: rooms are channels "room:<name>"; a message it sends is
// {nick, color, text, id, t}, and it shows any other publication too (a
// plain string, or JSON from the CLI or a script). The author is the
// server-set publisher id (e.from), named by presence when known; presence
// lists who is in the room.
import { PulseSocket } from '/pulse.js';
import { socketURL, connectionBanner, statusPill, identity, saveIdentity } from '/ui.js';

const ROOMS = ['lobby', 'random', 'help'];
const HISTORY = 50;
const NOTE_MS = 4000; // how long "back: missed messages filled in" stays
const $ = (id) => document.getElementById(id);

const me = identity();
const ps = new PulseSocket(socketURL(), { client: me.nick, info: { color: me.color }, pingEvery: 2000 });
window.pulse = ps; // for the console (and the browser tests)
connectionBanner(ps, $('banner'));
ps.addEventListener('statechange', () => $('members').classList.toggle('stale', ps.state !== 'open' && ps.state !== 'degraded'));
statusPill(ps, $('status'));

let room = '';
let sent = 0;
let noteTimer = 0;
/** @type {Map<string, {id: string, client: string, info?: any}>} */
const members = new Map();

function channel(name) { return `room:${name}`; }

function roomFromHash() {
  const name = decodeURIComponent(location.hash.replace(/^#/, '')).trim().toLowerCase();
  return /^[a-z0-9][a-z0-9_-]{0,39}$/.test(name) ? name : 'lobby';
}

function renderRooms() {
  const names = [...new Set([...ROOMS, room])];
  $('rooms').replaceChildren(...names.map((name) => {
    const li = document.createElement('li');
    const a = document.createElement('a');
    a.href = `#${name}`;
    a.textContent = `# ${name}`;
    a.classList.toggle('active', name === room);
    li.append(a);
    return li;
  }));
}

/** Leaves the current room and enters name, with its last HISTORY messages. */
function enter(name) {
  if (name === room) return;
  if (room) ps.unsubscribe(channel(room));
  room = name;
  members.clear();
  renderMembers();
  $('messages').replaceChildren();
  $('room-title').textContent = `# ${name}`;
  note('');
  renderRooms();
  ps.subscribe(channel(name), { presence: true, history: HISTORY });
}

function renderMembers() {
  const list = [...members.values()].sort((a, b) => a.client.localeCompare(b.client));
  $('count').textContent = list.length ? `(${list.length})` : '';
  $('members').replaceChildren(...list.map((m) => {
    const li = document.createElement('li');
    li.dataset.id = m.id;
    const sw = document.createElement('span');
    sw.className = 'swatch';
    sw.style.background = m.info?.color || '#8d99b5';
    const name = document.createElement('span');
    name.textContent = m.client || 'anonymous';
    li.append(sw, name);
    if (m.id === ps.member) li.append(Object.assign(document.createElement('span'), { className: 'muted', textContent: '(you)' }));
    return li;
  }));
  relabel();
}

/** Names the shown messages of members now in presence (history came first). */
function relabel() {
  for (const li of document.querySelectorAll('#messages li[data-from]')) {
    const member = members.get(li.dataset.from);
    if (!member) continue;
    const nick = li.querySelector('.nick');
    nick.textContent = member.client || 'anonymous';
    if (/^#[0-9a-f]{6}$/i.test(member.info?.color)) nick.style.color = member.info.color;
  }
}

function timeOf(ms) {
  return new Date(ms).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
}

/** Shows text beside the room's title for NOTE_MS, or clears it. */
function note(text) {
  clearTimeout(noteTimer);
  $('history-note').textContent = text;
  if (text) noteTimer = setTimeout(() => note(''), NOTE_MS);
}

/**
 * Who published data: the publisher's name in presence (from is its member
 * id, set by the server), else the nick the message carries, else a short
 * id; "server" for what the server published.
 */
function author(data, from) {
  const member = from && members.get(from);
  if (member) return { nick: member.client || 'anonymous', color: member.info?.color };
  if (typeof data?.nick === 'string' && data.nick) return { nick: data.nick, color: data.color };
  return { nick: from ? `#${from.slice(0, 6)}` : 'server', color: '' };
}

/** The text of a publication: a string as it is, {text} its text, other JSON as JSON. */
function textOf(data) {
  if (typeof data === 'string') return data;
  if (data && typeof data === 'object' && 'text' in data) return String(data.text);
  return JSON.stringify(data);
}

/** A message row; pos is null for one of ours still on its way. */
function messageRow(data, pos, from) {
  const fields = data && typeof data === 'object' ? data : {};
  const li = document.createElement('li');
  li.dataset.id = typeof fields.id === 'string' ? fields.id : '';
  if (pos) li.dataset.pos = `${pos.epoch}:${pos.offset}`;
  if (from) li.dataset.from = from;
  const who = author(fields, from);
  const nick = Object.assign(document.createElement('span'), { className: 'nick', textContent: who.nick });
  nick.style.color = /^#[0-9a-f]{6}$/i.test(who.color) ? who.color : 'var(--accent)';
  const text = Object.assign(document.createElement('span'), { className: 'text', textContent: textOf(data) });
  const time = Object.assign(document.createElement('span'), { className: 'time', textContent: timeOf(Number(fields.t) || Date.now()) });
  li.append(nick, text, time);
  return li;
}

function append(li) {
  const list = $('messages');
  const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 40;
  list.append(li);
  if (atBottom) list.scrollTop = list.scrollHeight;
}

function notice(text) {
  append(Object.assign(document.createElement('li'), { className: 'notice', textContent: text }));
}

ps.addEventListener('message', (e) => {
  if (e.channel !== channel(room)) return;
  if (!e.replayed) note(''); // the next live message: the catch-up is old news
  const id = typeof e.data?.id === 'string' ? e.data.id : '';
  const mine = id && document.querySelector(`#messages li.pending[data-id="${CSS.escape(id)}"]`);
  if (mine) mine.remove();
  append(messageRow(e.data, e.pos, e.from));
});

ps.addEventListener('subscribed', async (e) => {
  if (e.detail.channel !== channel(room)) return;
  if (e.detail.refetched) notice('Some messages were lost while you were away (the server restarted); showing the last ones again.');
  else if (e.detail.recovered === true && !e.detail.fresh) note('back: missed messages filled in');
  try {
    const list = await ps.presence(channel(room));
    members.clear();
    for (const m of list) members.set(m.id, m);
    renderMembers();
  } catch { /* the next subscribe lists them again */ }
});

ps.addEventListener('join', (e) => {
  if (e.detail.channel !== channel(room)) return;
  members.set(e.detail.member.id, e.detail.member);
  renderMembers();
});
ps.addEventListener('leave', (e) => {
  if (e.detail.channel !== channel(room)) return;
  members.delete(e.detail.member.id);
  renderMembers();
});

$('send-form').addEventListener('submit', (e) => {
  e.preventDefault();
  const text = $('text').value.trim();
  if (!text) return;
  const data = { id: `${ps.clientId}-${Date.now()}-${++sent}`, nick: me.nick, color: me.color, text, t: Date.now() };
  const row = messageRow(data, null, ps.member);
  const failed = (err) => { row.classList.remove('pending'); row.querySelector('.time').textContent = `not sent: ${err.message}`; };
  row.classList.add('pending');
  append(row);
  $('text').value = '';
  try {
    ps.publish(channel(room), data, { key: data.id }).ack.catch(failed);
  } catch (err) {
    failed(err); // queue_full: too much waits already
  }
});

$('room-form').addEventListener('submit', (e) => {
  e.preventDefault();
  const name = $('room-input').value.trim().toLowerCase().replace(/[^a-z0-9_-]/g, '-');
  $('room-input').value = '';
  if (name) location.hash = name;
});

$('nick').value = me.nick;
$('nick-form').addEventListener('submit', (e) => {
  e.preventDefault();
  const nick = $('nick').value.trim().slice(0, 24);
  if (!nick || nick === me.nick) return;
  me.nick = nick;
  saveIdentity(me);
  ps.identify(me.nick, { color: me.color });
  const current = room; // rejoin, so that presence shows the new name
  room = '';
  ps.unsubscribe(channel(current));
  enter(current);
});
$('nick').addEventListener('blur', () => $('nick-form').requestSubmit());

window.addEventListener('hashchange', () => enter(roomFromHash()));
enter(roomFromHash());
