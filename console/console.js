/* The omnirouter web console (docs/console.md): plain JavaScript, no framework, nothing fetched but this server's
 * API. The token is kept in sessionStorage (this tab only) and sent in the Authorization header; the event
 * stream is read with fetch() and a ReadableStream, because EventSource cannot send that header, so the token
 * never appears in a URL or a log. Everything shown is built with textContent: nothing the API returns is
 * ever parsed as HTML. */
'use strict';

const KEY = 'omni-token';
const $ = (id) => document.getElementById(id);
let token = sessionStorage.getItem(KEY);
let me = null;
let stop = null;          /* AbortController of the event stream and pending requests */
let refreshTimer = null;  /* supervisor: the overview every 5 s */
let workTimer = null;     /* partner: its work every WORK_POLL_MS */
let retryTimer = null;    /* signing in again after the API did not answer */
const WORK_POLL_MS = 3000;
const REASON_MAX = 500;   /* bytes of UTF-8, as the API counts (openapi.yaml, Reject) */

/* An element with attributes and children (strings become text nodes). */
function el(tag, attrs, ...children) {
  const ns = ['svg', 'rect', 'line', 'text', 'title', 'g'].includes(tag) ? 'http://www.w3.org/2000/svg' : null;
  const e = ns ? document.createElementNS(ns, tag) : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === 'text') e.textContent = v;
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) if (c !== null && c !== undefined) e.append(c);
  return e;
}

class ApiError extends Error {
  constructor(status, body, retryAfter) {
    super((body && body.error && body.error.message) || `HTTP ${status}`);
    this.status = status;
    this.code = body && body.error && body.error.code;
    this.retryAfter = retryAfter; /* seconds (a 503's Retry-After), or null */
  }
}

async function api(method, path, body) {
  const init = { method, headers: { Authorization: 'Bearer ' + token }, signal: stop && stop.signal };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const resp = await fetch(path, init);
  const data = await resp.json().catch(() => null);
  if (resp.status === 401) signOut('The token was refused (unknown or revoked).'); /* the caller says nothing more */
  if (!resp.ok) {
    const ra = parseInt(resp.headers.get('Retry-After') || '', 10);
    throw new ApiError(resp.status, data, Number.isFinite(ra) ? ra : null);
  }
  return data;
}

/* An error not to show: a request stopped by signing out, or refused (401), which signed out and says why on the
 * sign-in form; shown in the page it would be the previous user's (their conversation's number, say). */
function quiet(e) {
  return e.name === 'AbortError' || e.status === 401;
}

/* ---- the event stream (text/event-stream over fetch) ---------------------------------------------------- */

function parseBlock(block) {
  const ev = { id: null, type: 'message', data: [] };
  for (const line of block.split('\n')) {
    if (line === '' || line.startsWith(':')) continue;
    const i = line.indexOf(':');
    const field = i < 0 ? line : line.slice(0, i);
    let value = i < 0 ? '' : line.slice(i + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'id') ev.id = value;
    else if (field === 'event') ev.type = value;
    else if (field === 'data') ev.data.push(value);
  }
  if (!ev.data.length) return null;
  try { ev.data = JSON.parse(ev.data.join('\n')); } catch (e) { ev.data = null; }
  return ev;
}

/* Follows GET /v1/events until signed out: resumes with Last-Event-ID after a break, 2 s later. */
async function follow(onEvent) {
  const signal = stop.signal;
  let last = null;
  while (!signal.aborted) {
    try {
      const headers = { Authorization: 'Bearer ' + token };
      if (last) headers['Last-Event-ID'] = last;
      const resp = await fetch('/v1/events', { headers, signal, cache: 'no-store' });
      if (resp.status === 401) return signOut('The token was refused (unknown or revoked).');
      if (!resp.ok || !resp.body) throw new Error(`HTTP ${resp.status}`);
      setLive(true);
      onEvent({ type: 'connected' });
      const reader = resp.body.pipeThrough(new TextDecoderStream()).getReader();
      let buf = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += value.replace(/\r\n?/g, '\n');
        let i;
        while ((i = buf.indexOf('\n\n')) >= 0) {
          const ev = parseBlock(buf.slice(0, i));
          buf = buf.slice(i + 2);
          if (ev) {
            if (ev.id) last = ev.id;
            onEvent(ev);
          }
        }
      }
    } catch (e) {
      if (signal.aborted) return;
    }
    setLive(false);
    await new Promise((r) => setTimeout(r, 2000));
  }
}

function setLive(on) {
  const p = $('live');
  p.hidden = false;
  p.textContent = on ? 'Live' : 'Reconnecting…';
}

/* ---- signing in and out -------------------------------------------------------------------------------- */

/* Only a refused token (401) is forgotten: when the API cannot answer (503 while Redis is away, no connection),
 * the token is kept and GET /v1/me tried again after Retry-After (or 3 s), saying so. */
async function signIn(t) {
  clearTimeout(retryTimer);
  retryTimer = null;
  if (!/^[\x21-\x7e]*$/.test(t)) {
    /* a character no token has (a space, a control character, a non-ASCII letter: fetch() throws on the last two,
     * which would read as "no connection" and keep it): the API would refuse it as malformed, so it is refused
     * here, sending nothing */
    signOut('That token was refused: check it, or ask for a new one.');
    return;
  }
  if (stop) stop.abort();
  token = t;
  stop = new AbortController();
  const mine = stop;
  try {
    me = await api('GET', '/v1/me');
  } catch (e) {
    if (e.status === 401) { /* refused: api() signed out; forgotten */
      token = null;
      sessionStorage.removeItem(KEY);
      $('signin-error').textContent = 'That token was refused: check it, or ask for a new one.';
      return;
    }
    if (mine !== stop || mine.signal.aborted) return; /* signed out, or in again, meanwhile */
    sessionStorage.setItem(KEY, t);
    const wait = Math.min(60, Math.max(1, e.retryAfter || 3));
    const text = `The API is not answering (${e.status ? 'HTTP ' + e.status + ': ' : ''}${e.message}); ` +
                 `trying again in ${wait} s. Your token is kept.`;
    if ($('signin-error').textContent !== text) $('signin-error').textContent = text;
    retryTimer = setTimeout(() => signIn(t), wait * 1000);
    return;
  }
  $('signin-error').textContent = '';
  sessionStorage.setItem(KEY, t);
  $('signin').hidden = true;
  $('signout').hidden = false;
  $('who').hidden = false;
  $('who').textContent = 'Signed in as ' + me.subject;
  if (me.kind === 'operator') startSupervisor();
  else startAgent();
}

/* Signing out leaves nothing of the previous user: no request or timer running, no state, none of its data in
 * the page (hidden sections included). */
function signOut(why) {
  if (stop) stop.abort();
  clearInterval(refreshTimer);
  clearInterval(workTimer);
  clearTimeout(pending);
  clearTimeout(retryTimer);
  refreshTimer = workTimer = pending = retryTimer = null;
  token = null;
  me = null;
  knownOffers = new Set();
  responded = new Set();
  lastVolume = null;
  readError = null;
  workSeq++;
  sessionStorage.removeItem(KEY);
  for (const id of ['teams', 'agents', 'partners', 'report']) $(id).tBodies[0].replaceChildren();
  $('report').tFoot.replaceChildren();
  for (const id of ['volume-chart', 'volume-legend', 'decisions', 'offers', 'owned']) $(id).replaceChildren();
  for (const id of ['who', 'live', 'announce', 'agent-error', 'agent-status', 'presence-now']) $(id).textContent = '';
  for (const id of ['overview-at', 'risk-window']) $(id).textContent = '-';
  $('overview-at').removeAttribute('datetime');
  delete $('supervisor').dataset.at;
  $('agent-title').textContent = 'My work';
  $('presence').value = 'available';
  for (const id of ['supervisor', 'agent', 'signout', 'who', 'live']) $(id).hidden = true;
  $('signin').hidden = false;
  $('signin-error').textContent = why || '';
  $('token').value = '';
  $('token').focus();
}

/* ---- supervisor ---------------------------------------------------------------------------------------- */

function duration(s) {
  s = Math.round(s);
  if (s < 60) return s + ' s';
  if (s < 3600) return Math.floor(s / 60) + ' min' + (s % 60 ? ' ' + String(s % 60).padStart(2, '0') + ' s' : '');
  return Math.floor(s / 3600) + ' h ' + String(Math.floor(s % 3600 / 60)).padStart(2, '0') + ' min';
}

function cell(value, attrs) {
  return el('td', Object.assign({ class: 'num' }, attrs), String(value));
}

function renderTeams(teams) {
  const body = $('teams').tBodies[0];
  body.replaceChildren(...teams.map((t) => el('tr', { 'data-team': t.name },
    el('th', { scope: 'row' }, t.name + (t.kind === 'partner' ? ' (partner)' : '')),
    cell(t.queue_depth, { 'data-field': 'queue_depth', 'data-team': t.name,
      title: `urgent ${t.waiting.urgent}, high ${t.waiting.high}, normal ${t.waiting.normal}, low ${t.waiting.low}` }),
    cell(t.oldest_wait_s > 0 ? duration(t.oldest_wait_s) : '–', { 'data-field': 'oldest_wait_s', 'data-team': t.name }),
    cell(t.at_risk, { 'data-field': 'at_risk', 'data-team': t.name, class: t.at_risk ? 'num risk' : 'num' }),
    cell(t.overdue, { 'data-field': 'overdue', 'data-team': t.name, class: t.overdue ? 'num over' : 'num' }),
    cell(t.holding, { 'data-field': 'holding', 'data-team': t.name }),
    cell(t.assigned, { 'data-field': 'assigned', 'data-team': t.name }))));
}

function renderAgents(agents) {
  const body = $('agents').tBodies[0];
  body.replaceChildren(...agents.map((a) => {
    const cap = Object.entries(a.capacity).map(([ch, n]) => `${ch} ${n}`).join(', ') || 'none';
    return el('tr', { 'data-agent': a.id },
      el('th', { scope: 'row' }, a.id),
      el('td', {}, a.teams.join(', ')),
      el('td', { class: 'p-' + a.presence, 'data-field': 'presence', 'data-agent': a.id }, a.presence),
      cell(a.load, { 'data-field': 'load', 'data-agent': a.id }),
      el('td', {}, cap));
  }));
}

function renderPartners(partners) {
  const body = $('partners').tBodies[0];
  if (!partners.length) {
    body.replaceChildren(el('tr', {}, el('td', { colspan: 3, class: 'empty' }, 'No partner teams in the policy.')));
    return;
  }
  body.replaceChildren(...partners.map((p) => el('tr', { 'data-team': p.team },
    el('th', { scope: 'row' }, p.team),
    cell(`${p.holding} / ${p.max_concurrent || 'no limit'}`, { 'data-field': 'holding', 'data-team': p.team,
      class: p.max_concurrent && p.holding >= p.max_concurrent ? 'num over' : 'num' }),
    cell(p.daily_quota ? `${p.assigned_today} / ${p.daily_quota}` : 'no quota',
      { 'data-field': 'today', 'data-team': p.team,
        class: p.daily_quota && p.assigned_today >= p.daily_quota ? 'num over' : 'num' }))));
}

const CHANNEL_CLASSES = ['email', 'sms', 'phone', 'twitter', 'facebook'];

function channelClass(ch) {
  return 'c-' + (CHANNEL_CLASSES.includes(ch) ? ch : 'other');
}

/* Stacked bars, one per minute, drawn as SVG (no library; attributes only, so the CSP needs no inline style). */
let lastVolume = null;
function renderVolume(v) {
  lastVolume = v;
  /* drawn at the box's own width, so its labels keep their size on a phone */
  const W = Math.max(300, Math.min(1200, Math.round($('volume-chart').clientWidth || 720)));
  const H = 200, left = 36, bottom = 22, top = 8;
  const per = Array.from({ length: 60 }, (_, i) => v.channels.reduce((n, c) => n + c.per_minute[i], 0));
  const max = Math.max(1, ...per);
  const bw = (W - left - 4) / 60;
  const total = v.channels.reduce((n, c) => n + c.total, 0);
  const summary = v.channels.length
    ? `Messages per minute over the last hour, ${total} in all: ` + v.channels.map((c) => `${c.channel} ${c.total}`).join(', ')
    : 'No messages in the last hour.';
  const svg = el('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-labelledby': 'volume-title volume-desc' },
    el('title', { id: 'volume-desc' }, summary));
  const y = (n) => H - bottom - (n / max) * (H - bottom - top);
  svg.append(el('line', { class: 'axis', x1: left, y1: H - bottom, x2: W - 2, y2: H - bottom }),
    el('line', { class: 'axis', x1: left, y1: top, x2: left, y2: H - bottom }),
    el('text', { class: 'axis-label', x: left - 4, y: top + 10, 'text-anchor': 'end' }, String(max)),
    el('text', { class: 'axis-label', x: left - 4, y: H - bottom, 'text-anchor': 'end' }, '0'),
    el('text', { class: 'axis-label', x: left, y: H - 6 }, '60 min ago'),
    el('text', { class: 'axis-label', x: W - 2, y: H - 6, 'text-anchor': 'end' }, 'now'));
  for (let i = 0; i < 60; i++) {
    let base = 0;
    for (const c of v.channels) {
      const n = c.per_minute[i];
      if (!n) continue;
      svg.append(el('rect', { class: channelClass(c.channel), x: left + 1 + i * bw, width: Math.max(1, bw - 1),
        y: y(base + n), height: y(base) - y(base + n) }, el('title', {}, `${c.channel}: ${n}`)));
      base += n;
    }
  }
  $('volume-chart').replaceChildren(svg);
  $('volume-legend').replaceChildren(...(v.channels.length ? v.channels.map((c) =>
    el('li', { 'data-channel': c.channel }, el('span', { class: 'swatch ' + channelClass(c.channel), 'aria-hidden': 'true' }),
      `${c.channel}: ${c.total}`)) : [el('li', { class: 'empty' }, 'No messages in the last hour.')]));
}

/* Updates list to hold one item per key, in order: an item whose key it holds already keeps its element (update
 * rewrites its text), so what the user typed, opened or focused in it stays; only new items are made (make)
 * and only gone ones removed. An element is moved only when out of place (moving would take its focus). */
function syncList(list, items, key, make, update, emptyText) {
  if (!items.length) {
    const e = list.firstElementChild;
    if (!(list.children.length === 1 && e.classList.contains('empty') && e.textContent === emptyText))
      list.replaceChildren(el('li', { class: 'empty' }, emptyText));
    return;
  }
  const old = new Map();
  for (const li of list.children) if (li.dataset.key !== undefined) old.set(li.dataset.key, li);
  const want = [], seen = new Set();
  for (const item of items) {
    const k = String(key(item));
    if (seen.has(k)) continue; /* one element per key */
    seen.add(k);
    let li = old.get(k);
    if (li) update(li, item);
    else {
      li = make(item);
      li.dataset.key = k;
    }
    want.push(li);
  }
  const keep = new Set(want);
  for (const li of [...list.children]) if (!keep.has(li)) li.remove();
  want.forEach((li, i) => { if (list.children[i] !== li) list.insertBefore(li, list.children[i] || null); });
}

/* Sets an element's text only when it changed (a live region or a focused control is left alone otherwise). */
function setText(e, text) {
  if (e.textContent !== text) e.textContent = text;
}

function decisionSummary(d) {
  return `${new Date(d.at).toLocaleTimeString()}: conversation ${d.conversation} ` +
    (d.outcome === 'assigned' ? `assigned to ${d.owner}` : `queued on ${d.queue}`) + (d.rule ? ` (rule ${d.rule})` : '');
}

/* Keyed by conversation: a decision opened stays open (and focused) across refreshes. */
function renderDecisions(ds) {
  syncList($('decisions'), ds, (d) => d.conversation,
    (d) => el('li', { 'data-conversation': d.conversation },
      el('details', {}, el('summary', {}, decisionSummary(d)),
        el('ul', {}, d.explanation.map((line) => el('li', {}, line))))),
    (li, d) => {
      setText(li.querySelector('summary'), decisionSummary(d));
      const ul = li.querySelector('details > ul');
      if ([...ul.children].map((x) => x.textContent).join('\n') !== d.explanation.join('\n'))
        ul.replaceChildren(...d.explanation.map((line) => el('li', {}, line)));
    },
    'No routing decision yet.');
}

/* The SLA report's figures of a row, as omnictl report prints them ("–" when there is nothing to divide). */
function pct(part, whole) { return whole > 0 ? (100 * part / whole).toFixed(1) + '%' : '–'; }
function reportCells(r) {
  const nps = r.nps > 0 ? Math.round(100 * (r.nps_promoters - r.nps_detractors) / r.nps) : null;
  return [
    ['responded', r.responded], ['in_sla', pct(r.met, r.met + r.breached)],
    ['mean_response', r.responded > 0 ? duration(r.response_ms / r.responded / 1000) : '–'],
    ['resolved', r.resolved], ['fcr', pct(r.first_contact, r.resolved)],
    ['csat', pct(r.csat_satisfied, r.csat)], ['ces', r.ces > 0 ? (r.ces_sum / r.ces).toFixed(1) : '–'],
    ['nps', nps === null ? '–' : (nps > 0 ? '+' : '') + nps],
  ].map(([field, v]) => cell(v, { 'data-field': field, 'data-team': r.team, 'data-channel': r.channel }));
}

function renderReport(rep) {
  const row = (r) => el('tr', { 'data-team': r.team, 'data-channel': r.channel },
    el('th', { scope: 'row' }, r.team === '-' ? '(no team)' : r.team), el('td', {}, r.channel), ...reportCells(r));
  $('report').tBodies[0].replaceChildren(...(rep.rows.length ? rep.rows.map(row)
    : [el('tr', {}, el('td', { colspan: 10, class: 'empty' }, `Nothing to report from ${rep.from} to ${rep.to}.`))]));
  $('report').tFoot.replaceChildren(row(rep.total));
}

async function refreshOverview() {
  try {
    const [o, rep] = await Promise.all([api('GET', '/v1/overview'), api('GET', '/v1/report?days=7')]);
    if (!me || me.kind !== 'operator') return; /* signed out meanwhile */
    renderTeams(o.teams);
    $('risk-window').textContent = duration(o.sla_risk_ms / 1000);
    renderAgents(o.agents);
    renderPartners(o.partners);
    renderVolume(o.volume);
    renderDecisions(o.decisions);
    renderReport(rep);
    const at = $('overview-at');
    at.dateTime = new Date(o.at).toISOString();
    at.textContent = new Date(o.at).toLocaleTimeString();
    $('supervisor').dataset.at = String(o.at);
  } catch (e) {
    if (!quiet(e)) $('overview-at').textContent = 'not available: ' + e.message;
  }
}

let pending = null;
function refreshSoon() {   /* a burst of events: one refresh */
  if (!pending) pending = setTimeout(() => { pending = null; refreshOverview(); }, 1000);
}

function startSupervisor() {
  $('supervisor').hidden = false;
  refreshOverview();
  refreshTimer = setInterval(refreshOverview, 5000); /* the router's gauges move on their own too */
  follow((ev) => { if (ev.type !== 'connected') refreshSoon(); });
}

/* ---- agent --------------------------------------------------------------------------------------------- */

function say(text) {
  $('announce').textContent = text;
}

function firstText(c) {
  const m = c.messages && c.messages[c.messages.length - 1];
  if (!m) return '';
  return (m.subject ? m.subject + ': ' : '') + (m.text || '');
}

/* The conversations whose first response was recorded from this page, marked at once, before the view's
 * first_response_at (openapi.yaml, Conversation) comes back with the next read of the work. */
let responded = new Set();

function respondText(outcome) {
  if (outcome === 'already') return 'the first response was recorded already';
  return 'first response recorded (' + (outcome === 'no sla' ? 'no SLA target applies' : outcome) + ')';
}

async function act(conv, verb, body) {
  $('agent-error').textContent = '';
  $('agent-status').textContent = '';
  try {
    const r = await api('POST', `/v1/conversations/${encodeURIComponent(conv)}/${verb}`, body);
    if (verb === 'respond' && r) {
      responded.add(String(conv));
      $('agent-status').textContent = `Conversation ${conv}: ${respondText(r.outcome)}`;
    }
  } catch (e) {
    if (quiet(e)) return;
    $('agent-error').textContent = `Conversation ${conv}: ${e.message}`;
  }
  refreshWork();
}

function cardTitle(c) {
  return `Conversation ${c.id} · ${c.channel} · ${c.team}`;
}

function offerHint(c) {
  const expires = c.offer_expires_at ? new Date(c.offer_expires_at).toLocaleTimeString() : '';
  return `Category ${c.category}, priority ${c.prio}` + (expires ? `; open until ${expires}` : '');
}

function ownedHint(c) {
  return `Category ${c.category}, priority ${c.prio}` + (c.first_response_at || responded.has(String(c.id)) ? '; responded' : '');
}

/* A card's text is rewritten in place (its buttons and the reason typed stay). */
function updateCard(li, c, hint) {
  li.dataset.status = c.status;
  setText(li.querySelector('h4'), cardTitle(c));
  setText(li.querySelector('.hint'), hint(c));
  setText(li.querySelector('.text'), firstText(c));
}

function offerCard(c) {
  const id = c.id;
  const reasonId = 'reason-' + id;
  return el('li', { class: 'card offer', 'data-conversation': id, 'data-status': 'offered' },
    el('h4', {}, cardTitle(c)),
    el('p', { class: 'hint' }, offerHint(c)),
    el('p', { class: 'text' }, firstText(c)),
    el('div', { class: 'actions' },
      el('button', { type: 'button', 'data-verb': 'accept', 'aria-label': `Accept conversation ${id}`,
        onclick: () => act(id, 'accept') }, 'Accept'),
      el('span', {},
        el('label', { for: reasonId }, 'Reason to reject'),
        el('input', { id: reasonId, type: 'text', maxlength: 500, size: 16 })),
      el('button', { type: 'button', class: 'danger', 'data-verb': 'reject', 'aria-label': `Reject conversation ${id}`,
        onclick: () => {
          const reason = $(reasonId).value.trim();
          if (!reason) {
            $('agent-error').textContent = `Conversation ${id}: say why you reject it.`;
            $(reasonId).focus();
            return;
          }
          /* the API counts bytes of UTF-8, maxlength counts characters: "é" is 1 character, 2 bytes */
          const bytes = new TextEncoder().encode(reason).length;
          if (bytes > REASON_MAX) {
            $('agent-error').textContent = `Conversation ${id}: the reason is ${bytes} bytes long in UTF-8; at most ` +
              `${REASON_MAX} are taken (a letter with an accent takes 2, many other characters 3 or 4): shorten it.`;
            $(reasonId).focus();
            return;
          }
          act(id, 'reject', { reason });
        } }, 'Reject')));
}

function ownedCard(c) {
  const id = c.id;
  return el('li', { class: 'card', 'data-conversation': id, 'data-status': c.status },
    el('h4', {}, cardTitle(c)),
    el('p', { class: 'hint' }, ownedHint(c)),
    el('p', { class: 'text' }, firstText(c)),
    el('div', { class: 'actions' },
      el('button', { type: 'button', class: 'secondary', 'data-verb': 'respond',
        'aria-label': `Record the first response to conversation ${id}`, onclick: () => act(id, 'respond') }, 'Responded'),
      el('button', { type: 'button', 'data-verb': 'resolve', 'aria-label': `Resolve conversation ${id}`,
        onclick: () => act(id, 'resolve') }, 'Resolve')));
}

let knownOffers = new Set();
let workSeq = 0;          /* only the newest GET /v1/work is drawn (a slower, older answer is dropped) */
let readError = null;     /* the error a failed read of the work shows, taken away by the next read that succeeds */

/* The lists are updated by conversation (syncList): a reason half typed, the focus, stay. */
async function refreshWork() {
  const seq = ++workSeq;
  let w;
  try {
    w = await api('GET', '/v1/work');
  } catch (e) {
    if (!quiet(e) && seq === workSeq) $('agent-error').textContent = readError = 'Cannot read your work: ' + e.message;
    return;
  }
  if (seq !== workSeq || !me) return;
  if (readError !== null && $('agent-error').textContent === readError) $('agent-error').textContent = '';
  readError = null;
  const fresh = w.offered.filter((c) => !knownOffers.has(c.id));
  knownOffers = new Set(w.offered.map((c) => c.id));
  const focused = document.activeElement;
  const card = focused && focused.closest ? focused.closest('#agent li[data-conversation]') : null;
  syncList($('offers'), w.offered, (c) => c.id, offerCard, (li, c) => updateCard(li, c, offerHint), 'No offer waiting.');
  syncList($('owned'), w.owned, (c) => c.id, ownedCard, (li, c) => updateCard(li, c, ownedHint), 'Nothing held.');
  if (card && !card.isConnected) { /* accepted (or gone): the focus goes to its card under Held, if any */
    const now = [...$('owned').children].find((li) => li.dataset.conversation === card.dataset.conversation);
    if (now) now.querySelector('button').focus();
  }
  if (fresh.length)
    say(fresh.map((c) => `New offer: conversation ${c.id}, ${c.channel}, ${c.team}`).join('. '));
}

async function refreshPresence() {
  if (me.kind !== 'agent') return;
  try {
    const p = await api('GET', '/v1/presence');
    $('presence').value = p.presence;
    $('presence-now').textContent = 'Now: ' + p.presence;
  } catch (e) { /* shown by the next action */ }
}

function startAgent() {
  $('agent').hidden = false;
  $('presence-form').hidden = me.kind !== 'agent';
  $('agent-title').textContent = me.kind === 'agent' ? `My work (${me.id})` : `Team ${me.id}'s work`;
  refreshPresence();
  refreshWork();
  /* A partner's stream carries only the work the team itself holds: work offered to or held by its own agents
   * goes to their inboxes (docs/api.md "Tokens"), so a partner's page also reads its work every few seconds. */
  if (me.kind === 'partner') workTimer = setInterval(refreshWork, WORK_POLL_MS);
  follow((ev) => {
    if (ev.type === 'work.revoked' && ev.data) say(`Offer of conversation ${ev.data.conversation} withdrawn`);
    refreshWork();
  });
}

/* ---- wiring ---------------------------------------------------------------------------------------------- */

document.addEventListener('DOMContentLoaded', () => {
  $('signin-form').addEventListener('submit', (e) => {
    e.preventDefault();
    $('signin-error').textContent = '';
    signIn($('token').value.trim());
  });
  $('signout').addEventListener('click', () => signOut(''));
  window.addEventListener('resize', () => { if (lastVolume && !$('supervisor').hidden) renderVolume(lastVolume); });
  $('presence-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    $('agent-error').textContent = '';
    try {
      const p = await api('PUT', '/v1/presence', { presence: $('presence').value });
      $('presence-now').textContent = 'Now: ' + p.presence;
    } catch (err) {
      if (!quiet(err)) $('agent-error').textContent = 'Presence not set: ' + err.message;
    }
  });
  if (token) signIn(token);
  else $('token').focus();
});
