/**
 * `bench register`'s background job in its own process (the rows "load in another process"): attached from the
 * ticket it is sent over IPC, it keeps `inFlight` requests of 64 KiB PUTs and GETs going on its own keys until told
 * to stop, then reports how many it made. The same loop as the in-process load of register.ts.
 */
import { type Job, Satchel } from '../client/index.ts';

type Message = { start: { ticket: string; inFlight: number } } | { stop: true };

let running = true;
let ops = 0;
let lanes: Promise<void>[] = [];
let job: Job | null = null;

process.on('message', (message: Message) => {
  if ('start' in message) {
    void start(message.start.ticket, message.start.inFlight).then(
      () => process.send!({ started: true }),
      (error: unknown) => process.send!({ error: String(error) }),
    );
  } else {
    running = false;
    void Promise.all(lanes)
      .then(() => job?.close())
      .finally(() => {
        process.send!({ ops }, () => process.exit(0));
      });
  }
});

async function start(ticket: string, inFlight: number): Promise<void> {
  job = await Satchel.attach(ticket);
  const busy = job;
  const value = Buffer.alloc(64 * 1024, 1);
  lanes = Array.from({ length: inFlight }, async (_, lane) => {
    for (let i = 0; running; i++) {
      const key = `bg/${lane}/${i % 16}`;
      await (i % 2 === 0 ? busy.put(key, value) : busy.get(key));
      ops++;
    }
  });
}
