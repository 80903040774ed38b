/**
 * The two tokens, each kept in sessionStorage (this tab, until it closes) and never in the address bar: the
 * access token (viewer or admin) every read sends, the live stream included, and the admin token the buttons
 * send (the field at the top). The access token comes from the link (`#token=...`, taken out of the address bar
 * at once) or from the form the page shows without one, or after a 401 (`body.locked`).
 */
import { $ } from './dom.ts';
import { setConnection, setStatus } from './status.ts';

const ACCESS_KEY = 'satchel.token';
const ADMIN_KEY = 'satchel.adminToken';

let accessToken = '';

function loadSession(key: string): string {
  try {
    return sessionStorage.getItem(key) ?? '';
  } catch {
    return '';
  }
}

function saveSession(key: string, value: string): void {
  try {
    if (value) sessionStorage.setItem(key, value);
    else sessionStorage.removeItem(key);
  } catch {
    // Storage refused (private mode): the page still holds the token until it is closed.
  }
}

const adminInput = () => $<HTMLInputElement>('input[name=admin-token]');

export function getAccessToken(): string {
  return accessToken;
}

export function setAccessToken(token: string): void {
  accessToken = token;
  saveSession(ACCESS_KEY, token);
}

/** The admin token the buttons send: what the field at the top holds. */
export function getAdminToken(): string {
  return adminInput().value.trim();
}

function setAdminToken(token: string): void {
  adminInput().value = token;
  saveSession(ADMIN_KEY, token);
}

/** The admin token also opens every read; its subject says which it is (v1.@admin.MAC, v1.@viewer.MAC). */
function isAdminToken(token: string): boolean {
  return token.split('.')[1] === '@admin';
}

/** At start: the tokens this tab kept, and the field kept in storage as it is typed into. */
export function restoreTokens(): void {
  // Pages before these kept the admin token in localStorage, past the browser's session: no longer.
  try {
    localStorage.removeItem(ADMIN_KEY);
  } catch {
    // nothing kept
  }
  accessToken = loadSession(ACCESS_KEY);
  adminInput().value = loadSession(ADMIN_KEY);
  adminInput().addEventListener('input', () => saveSession(ADMIN_KEY, getAdminToken()));
}

/** What the status line says once the console answers a token taken from the link (null: none waiting). */
let linkTokenNote: string | null = null;

/** The console took the token (its first snapshot came): a token from the link is said to be kept. */
export function tokenAccepted(): void {
  if (linkTokenNote === null) return;
  setStatus(linkTokenNote, 'ok');
  linkTokenNote = null;
}

/** The console refused the token (401): a token from the link is said to be refused, not kept. */
export function tokenRefused(): void {
  if (linkTokenNote === null) return;
  setStatus('the token in the link was refused', 'error');
  linkTokenNote = null;
}

/**
 * `#token=...`: taken, kept for this tab, and taken out of the address bar (and so of the history) at once. The
 * status line says so once the console has taken it (`tokenAccepted`), not before: a wrong one is refused.
 */
export function takeTokenFromFragment(): boolean {
  if (location.hash.length < 2) return false;
  const raw = new URLSearchParams(location.hash.slice(1)).get('token');
  if (raw === null) return false;
  history.replaceState(null, '', location.pathname + location.search);
  const token = raw.trim();
  if (!token) return false;
  setAccessToken(token);
  if (isAdminToken(token)) setAdminToken(token);
  setStatus('checking the token in the link …');
  linkTokenNote = `${isAdminToken(token) ? 'admin' : 'access'} token taken from the link and kept for this tab`;
  return true;
}

/** Hides the cluster and asks for a token (the caller has stopped the stream). */
export function showLogin(reason: string): void {
  document.body.classList.add('locked');
  $('#login-reason').textContent = reason;
  setConnection('token needed', 'down');
  const input = $<HTMLInputElement>('#login input[name=token]');
  input.value = '';
  input.focus();
}

export function hideLogin(): void {
  document.body.classList.remove('locked');
}

/** The login form's token: kept as the access token, and as the admin token too when it is one and none is set. */
export function takeLoginToken(): boolean {
  const token = $<HTMLInputElement>('#login input[name=token]').value.trim();
  if (!token) return false;
  setAccessToken(token);
  if (isAdminToken(token) && !getAdminToken()) setAdminToken(token);
  return true;
}

export function forgetTokens(): void {
  setAccessToken('');
  setAdminToken('');
}
