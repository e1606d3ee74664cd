/**
 * The event queue: a binary min-heap on (time, insertion order) over typed arrays. Each event carries
 * a user index, a type and a 32-bit tag (a generation counter, so a superseded event is recognised
 * and dropped when popped instead of being searched for and removed).
 */
export class EventHeap {
  private time: Float64Array;
  private seq: Float64Array;
  private user: Int32Array;
  private type: Uint8Array;
  private tag: Uint32Array;
  private n = 0;
  private counter = 0;
  /** The popped event, read by the caller right after pop(). */
  t = 0;
  u = 0;
  ty = 0;
  tg = 0;

  constructor(capacity = 1 << 16) {
    this.time = new Float64Array(capacity);
    this.seq = new Float64Array(capacity);
    this.user = new Int32Array(capacity);
    this.type = new Uint8Array(capacity);
    this.tag = new Uint32Array(capacity);
  }

  get size(): number {
    return this.n;
  }

  private grow(): void {
    const cap = this.time.length * 2;
    const t = new Float64Array(cap);
    t.set(this.time);
    this.time = t;
    const s = new Float64Array(cap);
    s.set(this.seq);
    this.seq = s;
    const u = new Int32Array(cap);
    u.set(this.user);
    this.user = u;
    const ty = new Uint8Array(cap);
    ty.set(this.type);
    this.type = ty;
    const tg = new Uint32Array(cap);
    tg.set(this.tag);
    this.tag = tg;
  }

  private less(i: number, j: number): boolean {
    const a = this.time[i] as number;
    const b = this.time[j] as number;
    return a < b || (a === b && (this.seq[i] as number) < (this.seq[j] as number));
  }

  private swap(i: number, j: number): void {
    const t = this.time[i] as number;
    this.time[i] = this.time[j] as number;
    this.time[j] = t;
    const s = this.seq[i] as number;
    this.seq[i] = this.seq[j] as number;
    this.seq[j] = s;
    const u = this.user[i] as number;
    this.user[i] = this.user[j] as number;
    this.user[j] = u;
    const ty = this.type[i] as number;
    this.type[i] = this.type[j] as number;
    this.type[j] = ty;
    const tg = this.tag[i] as number;
    this.tag[i] = this.tag[j] as number;
    this.tag[j] = tg;
  }

  push(time: number, user: number, type: number, tag: number): void {
    if (this.n === this.time.length) this.grow();
    let i = this.n++;
    this.time[i] = time;
    this.seq[i] = this.counter++;
    this.user[i] = user;
    this.type[i] = type;
    this.tag[i] = tag >>> 0;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.less(i, p)) break;
      this.swap(i, p);
      i = p;
    }
  }

  /** Time of the earliest event, or Infinity. */
  peekTime(): number {
    return this.n === 0 ? Number.POSITIVE_INFINITY : (this.time[0] as number);
  }

  /** Removes the earliest event into (t, u, ty, tg); false when empty. */
  pop(): boolean {
    if (this.n === 0) return false;
    this.t = this.time[0] as number;
    this.u = this.user[0] as number;
    this.ty = this.type[0] as number;
    this.tg = this.tag[0] as number;
    const last = --this.n;
    if (last > 0) {
      this.time[0] = this.time[last] as number;
      this.seq[0] = this.seq[last] as number;
      this.user[0] = this.user[last] as number;
      this.type[0] = this.type[last] as number;
      this.tag[0] = this.tag[last] as number;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        if (l >= last) break;
        const r = l + 1;
        const m = r < last && this.less(r, l) ? r : l;
        if (!this.less(m, i)) break;
        this.swap(m, i);
        i = m;
      }
    }
    return true;
  }
}

/** A double-ended queue of (user, generation) pairs: one BullMQ priority level's ready jobs, FIFO. */
export class JobDeque {
  private users: Int32Array;
  private gens: Uint32Array;
  private head = 0;
  private len = 0;

  constructor(capacity = 1 << 12) {
    this.users = new Int32Array(capacity);
    this.gens = new Uint32Array(capacity);
  }

  get size(): number {
    return this.len;
  }

  private grow(): void {
    const cap = this.users.length * 2;
    const u = new Int32Array(cap);
    const g = new Uint32Array(cap);
    for (let i = 0; i < this.len; i++) {
      const j = (this.head + i) % this.users.length;
      u[i] = this.users[j] as number;
      g[i] = this.gens[j] as number;
    }
    this.users = u;
    this.gens = g;
    this.head = 0;
  }

  pushBack(user: number, gen: number): void {
    if (this.len === this.users.length) this.grow();
    const j = (this.head + this.len) % this.users.length;
    this.users[j] = user;
    this.gens[j] = gen >>> 0;
    this.len++;
  }

  pushFront(user: number, gen: number): void {
    if (this.len === this.users.length) this.grow();
    this.head = (this.head - 1 + this.users.length) % this.users.length;
    this.users[this.head] = user;
    this.gens[this.head] = gen >>> 0;
    this.len++;
  }

  /** Pops the front into (u, g); false when empty. */
  u = 0;
  g = 0;
  popFront(): boolean {
    if (this.len === 0) return false;
    this.u = this.users[this.head] as number;
    this.g = this.gens[this.head] as number;
    this.head = (this.head + 1) % this.users.length;
    this.len--;
    return true;
  }
}
