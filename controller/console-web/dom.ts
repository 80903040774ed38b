/**
 * The page's few DOM helpers: `h` builds elements (data only ever reaches the DOM as text nodes and attributes,
 * never as markup), `syncChildren` patches what is on screen into what was just built, and `meter` is the bar
 * every table uses.
 */
import type { Level } from './levels.ts';

export function $<E extends Element = HTMLElement>(selector: string): E {
  const found = document.querySelector<E>(selector);
  if (found === null) throw new Error(`the page has no ${selector}`);
  return found;
}

type Attrs = Record<string, string | number | boolean | null | undefined>;
type Child = Node | string | number | null | undefined | false;

/**
 * An element; `className` and `text` are the class and the text content, other attributes are set as
 * attributes (true: present and empty; false, null, undefined: absent). String children become text nodes.
 */
export function h<K extends keyof HTMLElementTagNameMap>(tag: K, attrs?: Attrs | null, ...children: Child[]): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  if (attrs) {
    for (const [key, value] of Object.entries(attrs)) {
      if (value === undefined || value === null || value === false) continue;
      if (key === 'className') node.className = String(value);
      else if (key === 'text') node.textContent = String(value);
      else node.setAttribute(key, value === true ? '' : String(value));
    }
  }
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

/**
 * Brings the children of `parent` in line with `next`, reusing elements: keyed ones (`data-key`) by key, the
 * others by position. Rows are patched in place every second, so hover, focus, tooltips and a text selection
 * survive updates (rebuilding them would lose all four).
 */
export function syncChildren(parent: Node, next: Node[]): void {
  const old = Array.from(parent.childNodes);
  const byKey = new Map<string, ChildNode>();
  const unkeyed: ChildNode[] = [];
  for (const child of old) {
    const key = keyOf(child);
    if (key !== null) byKey.set(key, child);
    else unkeyed.push(child);
  }
  const used = new Set<Node>();
  let position = 0;
  next.forEach((child, i) => {
    const key = keyOf(child);
    const match = key !== null ? byKey.get(key) : unkeyed[position++];
    let target = child;
    if (match !== undefined && !used.has(match) && match.nodeType === child.nodeType && match.nodeName === child.nodeName) {
      morph(match, child);
      target = match;
    }
    used.add(target);
    const at = parent.childNodes[i];
    if (at !== target) parent.insertBefore(target, at ?? null);
  });
  for (const child of old) if (!used.has(child) && child.parentNode === parent) child.remove();
}

function keyOf(node: Node): string | null {
  return node instanceof Element ? node.getAttribute('data-key') : null;
}

function morph(current: Node, next: Node): void {
  if (!(current instanceof Element) || !(next instanceof Element)) {
    if (current.nodeValue !== next.nodeValue) current.nodeValue = next.nodeValue;
    return;
  }
  for (const a of Array.from(current.attributes)) if (!next.hasAttribute(a.name)) current.removeAttribute(a.name);
  for (const a of Array.from(next.attributes)) if (current.getAttribute(a.name) !== a.value) current.setAttribute(a.name, a.value);
  syncChildren(current, Array.from(next.childNodes));
}

/**
 * A bar for a fraction, with its figure beside it (never over it: a label drawn on the fill was unreadable
 * where the fill ended under it). The fill is clamped at 100 %; the figure says the real number.
 */
export function meter(fraction: number | null, level: Level, label: string, title: string): HTMLElement {
  const known = fraction !== null && Number.isFinite(fraction);
  const fill = h('div', { className: 'fill' });
  if (known) fill.style.width = `${Math.max(0, Math.min(1, fraction)) * 100}%`;
  return h(
    'div',
    { className: `meter ${level}`, title },
    h(
      'div',
      {
        className: 'bar',
        role: 'meter',
        'aria-valuemin': 0,
        'aria-valuemax': 100,
        'aria-valuenow': known ? Math.round(fraction * 100) : undefined,
        'aria-label': title,
      },
      fill,
    ),
    h('span', { className: 'figure', text: label }),
  );
}

/** A table cell that, in the narrow layout (console.css), shows its column's name above its value. */
export function cell(label: string, attrs: Attrs | null, ...children: Child[]): HTMLTableCellElement {
  return h('td', { ...attrs, 'data-label': label }, ...children);
}
