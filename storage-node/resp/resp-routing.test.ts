/** The routing fast path's slot of an ASCII key is keySlotOfBytes's, hash tags included. */
import test from 'ava';
import { type AnnouncedNode, type AnnouncedPlacement, keySlotOfBytes, MAX_KEY_BYTES, pickNodes } from '../../proto/index.ts';
import { asciiKeySlot, lostInOlder, olderOwner } from './resp-routing.ts';

test('asciiKeySlot agrees with keySlotOfBytes on ASCII keys with braces anywhere, and declines the rest', (t) => {
  let seed = 7;
  const random = () => {
    seed = (seed * 1103515245 + 12345) >>> 0;
    return seed / 2 ** 32;
  };
  const alphabet = 'ab{}{}xyz:_0';
  for (let n = 0; n < 20_000; n++) {
    let key = '';
    const length = 1 + Math.floor(random() * 12);
    for (let i = 0; i < length; i++) key += alphabet[Math.floor(random() * alphabet.length)];
    const bytes = Buffer.from(key, 'latin1');
    t.is(asciiKeySlot(bytes), keySlotOfBytes(bytes), key);
  }
  for (const key of ['{}', '{}a}', 'a{b}c', '{a}{b}', '}{', '{', 'x{{y}}'])
    t.is(asciiKeySlot(Buffer.from(key)), keySlotOfBytes(Buffer.from(key)), key);
  t.is(asciiKeySlot(Buffer.alloc(0)), -1);
  t.is(asciiKeySlot(Buffer.from('caf\u00e9')), -1, 'not ASCII: keyProblem decides');
  t.is(asciiKeySlot(Buffer.alloc(MAX_KEY_BYTES + 1, 0x61)), -1);
  t.not(asciiKeySlot(Buffer.alloc(MAX_KEY_BYTES, 0x61)), -1);
});

const node = (id: string, lost = false): AnnouncedNode => ({
  id,
  address: `${id}:1`,
  resp: `${id}:2`,
  weight: 1,
  ...(lost ? { lost: true as const } : {}),
});

test('olderOwner: a remnant holder marked lost is passed over for a live one; none live is "lost", not nil', (t) => {
  const ids = ['x', 'y', 'z'];
  /** A slot whose two holders among x, y, z are exactly `wanted`, the first of them its owner. */
  const slotHeldBy = (wanted: string[]) => {
    for (let slot = 0; ; slot += 16) {
      const holders = pickNodes(
        ids.map((id) => ({ id, weight: 1 })),
        slot,
        2,
      ).map((i) => ids[i]!);
      if (holders[0] === wanted[0] && holders[1] === wanted[1]) return slot;
    }
  };
  const placement = (lost: string[], replicas = 2): AnnouncedPlacement => ({
    epoch: 2,
    replicas,
    generations: [[node('n')], ids.map((id) => node(id, lost.includes(id)))],
  });
  const xy = slotHeldBy(['x', 'y']);
  t.is((olderOwner(placement([]), xy, 'n') as AnnouncedNode).id, 'x', 'unmarked: the owner, as before');
  t.is((olderOwner(placement(['x']), xy, 'n') as AnnouncedNode).id, 'y', 'its live copy');
  t.is(olderOwner(placement(['x', 'y']), xy, 'n'), 'lost');
  t.is((olderOwner(placement(['x', 'y']), slotHeldBy(['z', 'x']), 'n') as AnnouncedNode).id, 'z');
  // One copy: its only holder's incarnation died (a new process of the id answers in the newest generation).
  const ownedBy = (id: string) => {
    for (let slot = 0; ; slot += 16)
      if (
        ids[
          pickNodes(
            ids.map((i) => ({ id: i, weight: 1 })),
            slot,
            1,
          )[0]!
        ] === id
      )
        return slot;
  };
  t.is(olderOwner(placement(['x'], 1), ownedBy('x'), 'n'), 'lost');
  t.true(lostInOlder(placement(['x'], 1), ownedBy('x')), 'EXISTS, INCR, SET NX refuse it');
  t.is((olderOwner(placement(['x'], 1), ownedBy('y'), 'n') as AnnouncedNode).id, 'y', 'a slot of a live node: its owner');
  t.false(lostInOlder(placement(['x'], 1), ownedBy('y')));
});

test('olderOwner: an ASKING read missed goes on from the generation after the one it was asked in, to a remnant at last', (t) => {
  // Newest [n], then [c] (the job's older generation), then a remnant whose two holders both restarted.
  const placement: AnnouncedPlacement = {
    epoch: 3,
    replicas: 2,
    generations: [[node('n')], [node('c')], [node('x', true), node('y', true)]],
  };
  t.is((olderOwner(placement, 0, 'n') as AnnouncedNode).id, 'c', 'the newest owner asks the next generation');
  t.is(olderOwner(placement, 0, 'c', true), 'lost', 'which, missing it too, gives the remnant’s answer');
  t.is(olderOwner(placement, 0, 'c'), 'lost', 'as it would as the newest owner');
  t.is(olderOwner({ ...placement, generations: placement.generations.slice(0, 2) }, 0, 'c', true), null, 'nothing older: nil');
  t.is(olderOwner(placement, 0, 'z', true), null, 'asked where it answers for no generation: no further');
});
