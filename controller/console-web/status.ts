/** The status line (`#status`, role=status: what a button did) and the connection badge (`#connection`). */
import { $ } from './dom.ts';

export type StatusKind = '' | 'ok' | 'error';

export function setStatus(text: string, kind: StatusKind = ''): void {
  const line = $('#status');
  line.textContent = text;
  line.className = kind;
}

export function setConnection(text: string, kind: '' | 'live' | 'down', title = ''): void {
  const badge = $('#connection');
  badge.textContent = text;
  badge.className = kind;
  badge.title = title;
}
