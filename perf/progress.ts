/** A one-line progress display on stderr: redrawn in place on a terminal, a line per step otherwise. */
export class Progress {
  private done = 0;
  private readonly started = Date.now();
  private readonly tty = process.stderr.isTTY === true;

  constructor(
    private readonly label: string,
    private readonly total: number,
  ) {}

  step(what: string): void {
    this.done++;
    const width = 24;
    // A bench that takes more steps than it announced fills the bar, and goes on counting.
    const filled = Math.min(width, Math.round((this.done / this.total) * width));
    const bar = `${'█'.repeat(filled)}${'░'.repeat(width - filled)}`;
    const elapsed = ((Date.now() - this.started) / 1000).toFixed(0);
    const line = `${this.label} ${bar} ${this.done}/${this.total} ${elapsed}s ${what}`;
    process.stderr.write(this.tty ? `\r\x1b[K${line}` : `${line}\n`);
  }

  end(): void {
    if (this.tty) process.stderr.write('\n');
  }
}
