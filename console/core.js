// Shared by every page of the console: the API client (session cookie + CSRF header), DOM building
// without innerHTML (every value is text), errors in words with their code, confirmation, formatting.

let csrf = '';
export const setCsrf = (t) => { csrf = t || ''; };

export class ApiError extends Error {
  constructor(status, code, message, detail) {
    super(message || `HTTP ${status}`);
    this.status = status;
    this.code = code || `HTTP_${status}`;
    this.detail = detail;
  }
}

const listeners = new Set();
/** Called with 401 answers: the session ended (signed out elsewhere, or expired). */
export const onSignedOut = (f) => listeners.add(f);

export async function api(path, { method = 'GET', body, raw = false } = {}) {
  const headers = { Accept: 'application/json' };
  if (method !== 'GET' && method !== 'HEAD') headers['X-CSRF-Token'] = csrf;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const r = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), credentials: 'same-origin', cache: 'no-store' });
  if (!r.ok) {
    const e = await r.json().catch(() => ({}));
    if (r.status === 401 && !path.startsWith('/console/session')) listeners.forEach((f) => f());
    throw new ApiError(r.status, e.code, e.message, e.detail);
  }
  if (raw) return r;
  return r.status === 204 ? null : r.json();
}

export const csrfHeader = () => ({ 'X-CSRF-Token': csrf });

/** h('tag.class', {attrs}, ...children): elements from data, never from HTML strings. */
export function h(spec, attrs, ...children) {
  const [tag, ...classes] = spec.split('.');
  const el = document.createElement(tag || 'div');
  if (classes.length) el.className = classes.join(' ');
  if (attrs && (typeof attrs !== 'object' || attrs instanceof Node || Array.isArray(attrs))) {
    children.unshift(attrs);
    attrs = undefined;
  }
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'dataset') Object.assign(el.dataset, v);
    // Through the CSSOM: the Content-Security-Policy forbids style attributes.
    else if (k === 'style') el.style.cssText = v;
    else if (v === true) el.setAttribute(k, '');
    else el.setAttribute(k, String(v));
  }
  const add = (c) => {
    if (c === undefined || c === null || c === false) return;
    if (Array.isArray(c)) c.forEach(add);
    else el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  };
  children.forEach(add);
  return el;
}

/** A notice in words, with the code when there is one. */
export function toast(message, kind = 'error') {
  const box = document.getElementById('toasts');
  const t = h(`div.toast.${kind}`, message);
  box.append(t);
  setTimeout(() => t.remove(), kind === 'error' ? 12000 : 5000);
}

export function reportError(what, e) {
  if (e instanceof ApiError) toast(`${what} failed — ${e.code}: ${e.message}${e.detail ? ` (${e.detail})` : ''}`);
  else toast(`${what} failed — ${e && e.message ? e.message : e}`);
}

/** Runs an action with its button disabled; errors are reported in words with the code. */
export async function act(button, what, f) {
  if (button) button.disabled = true;
  try {
    return await f();
  } catch (e) {
    reportError(what, e);
    return undefined;
  } finally {
    if (button) button.disabled = false;
  }
}

export function confirmDialog(text, okLabel = 'Confirm') {
  const d = document.getElementById('confirm');
  document.getElementById('confirm-text').textContent = text;
  document.getElementById('confirm-ok').textContent = okLabel;
  return new Promise((resolve) => {
    d.addEventListener('close', () => resolve(d.returnValue === 'ok'), { once: true });
    d.returnValue = '';
    d.showModal();
  });
}

export const fmt = {
  int: (n) => (n === undefined || n === null ? '—' : Number(n).toLocaleString('en')),
  rate: (n) => (n ? `${Number(n).toFixed(n < 10 ? 1 : 0)}/s` : '0/s'),
  time: (iso) => (iso ? new Date(iso).toLocaleString('en-GB', { dateStyle: 'short', timeStyle: 'medium' }) : '—'),
  bytes: (n) => {
    if (n === undefined || n === null || !Number.isFinite(n)) return '—';
    const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
    let i = 0;
    while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
    return `${n.toFixed(i ? 1 : 0)} ${u[i]}`;
  },
  short: (s, n = 12) => (s ? (s.length > n ? `${s.slice(0, n)}…` : s) : '—'),
};

export function pageTitle(text, ...extra) {
  document.title = `${text} · deid console`;
  return h('div.title', h('h1', text), ...extra);
}

/** Prev / next buttons for a server-paged list. */
export function pager(total, page, size, go) {
  const pages = Math.max(1, Math.ceil(total / size));
  return h('div.pager',
    h('button.quiet', { type: 'button', disabled: page <= 1, onclick: () => go(page - 1), 'aria-label': 'Previous page' }, '‹ Prev'),
    h('span', `Page ${page} of ${pages} · ${fmt.int(total)} in all`),
    h('button.quiet', { type: 'button', disabled: page >= pages, onclick: () => go(page + 1), 'aria-label': 'Next page' }, 'Next ›'));
}

export function badge(text, kind = '') {
  return h(`span.badge${kind ? `.${kind}` : ''}`, text);
}
