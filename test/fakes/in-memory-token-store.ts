/**
 * In-memory TokenStore for unit tests of the refresh use case: the same semantics as the Postgres
 * implementation (src/store/token-store.ts), statement by statement, without a database.
 *
 * test/integration/store/token-store-contract.test.ts runs one table of behaviours against both, so
 * this file may only change together with that table.
 *
 * Faithful on purpose:
 * - every write is applied atomically inside one call (no await between the guard and the write), as
 *   the real store's one-statement writes are;
 * - time comes from the caller's `now`, except where Postgres uses its own clock (insertAudit's
 *   `createdAt`, and lease lapse and length): here `opts.clock`;
 * - values go in and come out as copies: mutating a returned object (or a Date passed in) never
 *   changes the store;
 * - the inputs Postgres would refuse are refused (invalid Date, non-integer version / cal user id /
 *   audit duration, a zero failure window once a streak has started, an int4 overflow, an audit row
 *   for a user without a token row, an unknown outcome).
 *
 * Different on purpose:
 * - tokens are kept in plain text (no cipher); `undecryptable` / `setUndecryptable` make `get` and
 *   `acquireLease` throw TokenDecryptError for a user, as a corrupt ciphertext does. The flag is sticky
 *   (a later save does not clear it, unlike a real re-encryption) so a test controls it alone;
 * - a user id that is not 26 characters long is refused on write (Postgres rejects a longer one and
 *   pads a shorter one into a CHAR(26) row that can never be decrypted); reads of such an id find no row;
 * - errors are plain Errors (message prefixed "in-memory token store:"), not Prisma errors.
 *
 * Test hooks: `failNext` / `failAll` (fault injection per method), `seed` (insert a row directly),
 * `peek` (a copy of a row, tokens included), `audits` (the audit rows).
 */
import { TokenDecryptError } from "../../src/core/errors.js";
import type { AuditEntry, AuditOutcome, LeaseResult, TokenMeta, TokenRecord, TokenStore } from "../../src/core/ports.js";
import { normalizeUlid } from "../../src/core/ulid.js";

export type TokenStoreMethod = keyof TokenStore;

/** One cal_token_audit row. `id` counts from 1 per store (the real column is a BIGSERIAL). */
export interface InMemoryAuditRow {
  id: number;
  userUlid: string;
  outcome: AuditOutcome;
  trigger: string;
  errorCode: string | null;
  version: number | null;
  durationMs: number | null;
  createdAt: Date;
}

/** A row for `seed`: the user id, the rest defaults to a fresh ACTIVE version-1 row. */
export type SeedRecord = Pick<TokenRecord, "userUlid"> & Partial<Omit<TokenRecord, "userUlid">>;

/** An injected fault: an Error (thrown as is every time) or a factory (a fresh error per call). */
export type Fault = Error | (() => Error);

export interface FailOptions {
  /** How many consecutive calls fail (default 1). */
  times?: number;
  /**
   * Apply the operation, then throw: a write that committed but whose answer was lost (connection
   * dropped after COMMIT). Default false: the call fails before touching anything (database down).
   */
  applied?: boolean;
}

export interface InMemoryTokenStoreOptions {
  /** Users whose ciphertext "does not authenticate" from the start (any case). */
  undecryptable?: Iterable<string>;
  /** The database's own clock: leases, insertAudit's createdAt and `seed` defaults read it. */
  clock?: () => Date;
}

export interface InMemoryTokenStore extends TokenStore {
  /** Insert (or replace) a row directly, bypassing every guard. Returns a copy of the stored row. */
  seed(record: SeedRecord): TokenRecord;
  /** A copy of the stored row (tokens included), or null. */
  peek(userUlid: string): TokenRecord | null;
  /** Copies of every audit row, oldest first; optionally only one user's. */
  audits(userUlid?: string): InMemoryAuditRow[];
  /** The next call(s) of `method` throw `error` (queued: several failNext calls fail in order). */
  failNext(method: TokenStoreMethod, error: Fault, opts?: FailOptions): void;
  /** Every call of `method` throws `error` until `failAll(method, null)`. Queued failNext faults go first. */
  failAll(method: TokenStoreMethod, error: Fault | null): void;
  /** Make `get` / `acquireLease` throw TokenDecryptError for this user (or stop doing so). */
  setUndecryptable(userUlid: string, on?: boolean): void;
  /** Calls per method so far, failed ones included. */
  callCount(method: TokenStoreMethod): number;
}

const INT4_MAX = 2_147_483_647;
const INT4_MIN = -2_147_483_648;
const OUTCOMES: readonly AuditOutcome[] = [
  "REFRESHED",
  "FORCE_REFRESHED",
  "FAILED_TRANSIENT",
  "RECONNECT_REQUIRED",
  "RECOVERED",
  "CONFIG_ERROR",
];
const ULID_LENGTH = 26;

function storeError(message: string): Error {
  return new Error(`in-memory token store: ${message}`);
}

/** A bound timestamp parameter: Prisma refuses an invalid Date before sending anything. */
function date(value: Date, field: string): Date {
  if (!(value instanceof Date) || Number.isNaN(value.getTime())) throw storeError(`${field} is not a valid Date`);
  return new Date(value.getTime());
}

function dateOrNull(value: Date | null, field: string): Date | null {
  return value === null ? null : date(value, field);
}

/** A `${x}::int` parameter: Postgres refuses a fraction or an int4 overflow. */
function int(value: number, field: string): number {
  if (!Number.isInteger(value) || value > INT4_MAX || value < INT4_MIN) throw storeError(`${field} must be a 32-bit integer, got ${value}`);
  return value;
}

function intOrNull(value: number | null, field: string): number | null {
  return value === null ? null : int(value, field);
}

const copyDate = (d: Date | null): Date | null => (d === null ? null : new Date(d.getTime()));

/** Field by field, as src/store/rows.ts toMeta: the secrets can never ride along. */
function toMeta(row: TokenRecord): TokenMeta {
  return {
    userUlid: row.userUlid,
    kind: row.kind,
    calUserId: row.calUserId,
    accessTokenExpiresAt: new Date(row.accessTokenExpiresAt.getTime()),
    refreshTokenExpiresAt: copyDate(row.refreshTokenExpiresAt),
    status: row.status,
    version: row.version,
    leaseOwner: row.leaseOwner,
    leaseUntil: copyDate(row.leaseUntil),
    rotationUncertain: row.rotationUncertain,
    refreshTokenRejected: row.refreshTokenRejected,
    failureCount: row.failureCount,
    firstFailureAt: copyDate(row.firstFailureAt),
    lastFailureAt: copyDate(row.lastFailureAt),
    lastFailureCode: row.lastFailureCode,
    lastRefreshedAt: copyDate(row.lastRefreshedAt),
    nextRefreshAt: new Date(row.nextRefreshAt.getTime()),
    lastUsedAt: copyDate(row.lastUsedAt),
    createdAt: new Date(row.createdAt.getTime()),
    updatedAt: new Date(row.updatedAt.getTime()),
  };
}

function copyRecord(row: TokenRecord): TokenRecord {
  return { ...toMeta(row), accessToken: row.accessToken, refreshToken: row.refreshToken };
}

export function createInMemoryTokenStore(opts: InMemoryTokenStoreOptions = {}): InMemoryTokenStore {
  const clock = opts.clock ?? (() => new Date());
  const rows = new Map<string, TokenRecord>();
  const auditRows: InMemoryAuditRow[] = [];
  const undecryptable = new Set<string>([...(opts.undecryptable ?? [])].map(normalizeUlid));
  const queued = new Map<TokenStoreMethod, { error: Fault; applied: boolean }[]>();
  const always = new Map<TokenStoreMethod, Fault>();
  const calls = new Map<TokenStoreMethod, number>();
  let nextAuditId = 1;

  /** The primary key for a write: CHAR(26), upper case. */
  function keyForWrite(userUlid: string): string {
    const ulid = normalizeUlid(userUlid);
    if (ulid.length !== ULID_LENGTH) throw storeError(`user ULID must be ${ULID_LENGTH} characters, got ${ulid.length}`);
    return ulid;
  }

  /** A WHERE user_ulid = … lookup: a malformed id simply matches nothing. */
  function find(userUlid: string): TokenRecord | undefined {
    return rows.get(normalizeUlid(userUlid));
  }

  /** toRecord: the "decryption" step, where a corrupt row throws. */
  function decrypt(row: TokenRecord): TokenRecord {
    if (undecryptable.has(row.userUlid)) {
      throw new TokenDecryptError('token decrypt failed: authentication failed (tampered, wrong user or wrong key) (key id "in-memory")');
    }
    return copyRecord(row);
  }

  function makeError(fault: Fault): Error {
    return typeof fault === "function" ? fault() : fault;
  }

  /**
   * Runs one method: counts the call, applies an injected fault (before the operation, or after it for
   * `applied`), otherwise returns the operation's result. Always asynchronous, like a round trip.
   */
  async function run<T>(method: TokenStoreMethod, op: () => T): Promise<T> {
    calls.set(method, (calls.get(method) ?? 0) + 1);
    await Promise.resolve();
    const next = queued.get(method)?.shift();
    const fault = next ?? (always.has(method) ? { error: always.get(method)!, applied: false } : undefined);
    if (fault === undefined) return op();
    if (fault.applied) op();
    throw makeError(fault.error);
  }

  function releaseIfOwner(row: TokenRecord, owner: string): void {
    // CASE WHEN lease_owner = owner THEN NULL ELSE … END: both columns judged on the old owner;
    // a NULL owner never equals anything, so a half-cleared lease keeps its lease_until.
    if (row.leaseOwner !== null && row.leaseOwner === owner) {
      row.leaseOwner = null;
      row.leaseUntil = null;
    }
  }

  function insertAuditRow(entry: Omit<InMemoryAuditRow, "id">): void {
    auditRows.push({ id: nextAuditId++, ...entry });
  }

  const store: InMemoryTokenStore = {
    get: (userUlid) =>
      run("get", () => {
        const row = find(userUlid);
        return row === undefined ? null : decrypt(row);
      }),

    getMeta: (userUlid) =>
      run("getMeta", () => {
        const row = find(userUlid);
        return row === undefined ? null : toMeta(row);
      }),

    save: (input) =>
      run("save", () => {
        const ulid = keyForWrite(input.userUlid);
        const now = date(input.now, "now");
        const nextRefreshAt = date(input.nextRefreshAt, "nextRefreshAt");
        const accessTokenExpiresAt = date(input.pair.accessTokenExpiresAt, "accessTokenExpiresAt");
        const refreshTokenExpiresAt = dateOrNull(input.pair.refreshTokenExpiresAt, "refreshTokenExpiresAt");
        const calUserId = intOrNull(input.calUserId, "calUserId");
        const existing = rows.get(ulid);
        if (existing !== undefined) {
          // ON CONFLICT … DO UPDATE … WHERE NOT ifAbsent: nothing returned, row untouched.
          if (input.ifAbsent === true) return null;
          // created_at and last_used_at are not in the SET list: they survive a reconnect.
          Object.assign(existing, {
            kind: input.kind,
            calUserId,
            accessToken: input.pair.accessToken,
            refreshToken: input.pair.refreshToken,
            accessTokenExpiresAt,
            refreshTokenExpiresAt,
            status: "ACTIVE",
            version: int(existing.version + 1, "version"),
            leaseOwner: null,
            leaseUntil: null,
            rotationUncertain: false,
            refreshTokenRejected: false,
            failureCount: 0,
            firstFailureAt: null,
            lastFailureAt: null,
            lastFailureCode: null,
            lastRefreshedAt: now,
            nextRefreshAt,
            updatedAt: new Date(now.getTime()),
          } satisfies Partial<TokenRecord>);
          return toMeta(existing);
        }
        const row: TokenRecord = {
          userUlid: ulid,
          kind: input.kind,
          calUserId,
          accessToken: input.pair.accessToken,
          refreshToken: input.pair.refreshToken,
          accessTokenExpiresAt,
          refreshTokenExpiresAt,
          status: "ACTIVE",
          version: 1,
          leaseOwner: null,
          leaseUntil: null,
          rotationUncertain: false,
          refreshTokenRejected: false,
          failureCount: 0,
          firstFailureAt: null,
          lastFailureAt: null,
          lastFailureCode: null,
          lastRefreshedAt: now,
          nextRefreshAt,
          lastUsedAt: null,
          createdAt: new Date(now.getTime()),
          updatedAt: new Date(now.getTime()),
        };
        rows.set(ulid, row);
        return toMeta(row);
      }),

    acquireLease: (userUlid, owner, forMs) =>
      run("acquireLease", (): LeaseResult => {
        if (!Number.isFinite(forMs) || forMs < 0) throw storeError("lease length must be a finite, non-negative number of ms");
        // Leases are judged by the database's clock (here `opts.clock`), never the caller's.
        const nowAt = date(clock(), "clock()");
        const untilAt = new Date(nowAt.getTime() + Math.max(0, forMs));
        const row = find(userUlid);
        if (row === undefined) return { kind: "missing" };
        const free =
          row.leaseOwner === null || row.leaseUntil === null || row.leaseUntil.getTime() < nowAt.getTime() || row.leaseOwner === owner;
        // The real store re-reads the row with a second statement when the UPDATE matched nothing.
        if (!free) return { kind: "held", meta: toMeta(row) };
        // Lease bookkeeping is coordination, not data: version and updated_at stay.
        row.leaseOwner = owner;
        row.leaseUntil = untilAt;
        try {
          return { kind: "acquired", token: decrypt(row) };
        } catch (err) {
          // Hand the lease back: the caller gets nothing it could release.
          releaseIfOwner(row, owner);
          throw err;
        }
      }),

    releaseLease: (userUlid, owner) =>
      run("releaseLease", () => {
        const row = find(userUlid);
        if (row !== undefined) releaseIfOwner(row, owner);
      }),

    saveRotated: (input) =>
      run("saveRotated", (): { ok: true; meta: TokenMeta } | { ok: false } => {
        const now = date(input.now, "now");
        const nextRefreshAt = date(input.nextRefreshAt, "nextRefreshAt");
        const accessTokenExpiresAt = date(input.pair.accessTokenExpiresAt, "accessTokenExpiresAt");
        const refreshTokenExpiresAt = dateOrNull(input.pair.refreshTokenExpiresAt, "refreshTokenExpiresAt");
        const expectedVersion = int(input.expectedVersion, "expectedVersion");
        const audit = input.audit ?? null;
        // Every parameter is bound whether or not the CAS wins, so a bad audit fails the whole statement.
        const durationMs = audit === null ? null : int(audit.durationMs, "audit.durationMs");
        if (audit !== null && !OUTCOMES.includes(audit.outcome)) throw storeError(`unknown audit outcome ${String(audit.outcome)}`);
        const row = find(input.userUlid);
        if (row === undefined || row.version !== expectedVersion) return { ok: false };
        releaseIfOwner(row, input.owner);
        Object.assign(row, {
          accessToken: input.pair.accessToken,
          refreshToken: input.pair.refreshToken,
          accessTokenExpiresAt,
          refreshTokenExpiresAt,
          version: int(row.version + 1, "version"),
          status: "ACTIVE",
          rotationUncertain: false,
          refreshTokenRejected: false,
          failureCount: 0,
          firstFailureAt: null,
          lastFailureAt: null,
          lastFailureCode: null,
          lastRefreshedAt: now,
          nextRefreshAt,
          updatedAt: new Date(now.getTime()),
        } satisfies Partial<TokenRecord>);
        if (audit !== null) {
          // The CTE reads `updated`, so the audit carries the new version; created_at is the caller's now.
          insertAuditRow({
            userUlid: row.userUlid,
            outcome: audit.outcome,
            trigger: audit.trigger,
            errorCode: audit.errorCode ?? null,
            version: row.version,
            durationMs,
            createdAt: new Date(now.getTime()),
          });
        }
        return { ok: true, meta: toMeta(row) };
      }),

    recordFailure: (input) =>
      run("recordFailure", () => {
        const now = date(input.now, "now");
        const nextRefreshAt = date(input.nextRefreshAt, "nextRefreshAt");
        const expectedVersion = int(input.expectedVersion, "expectedVersion");
        const row = find(input.userUlid);
        if (row === undefined || row.version !== expectedVersion) return false;
        let failureCount: number;
        if (row.firstFailureAt === null) {
          failureCount = 1;
        } else {
          // GREATEST(failure_count, 1 + floor(epoch(now - first) * 1000 / window::float8)::int)
          if (input.failureWindowMs === 0) throw storeError("division by zero (failureWindowMs = 0)");
          const windows = Math.floor((now.getTime() - row.firstFailureAt.getTime()) / input.failureWindowMs);
          if (!Number.isFinite(windows) || windows > INT4_MAX || windows < INT4_MIN)
            throw storeError("integer out of range (failure windows)");
          failureCount = Math.max(row.failureCount, int(1 + windows, "failureCount"));
        }
        row.failureCount = failureCount;
        row.firstFailureAt ??= now;
        row.lastFailureAt = new Date(now.getTime());
        row.lastFailureCode = input.code;
        row.rotationUncertain = row.rotationUncertain || input.rotationUncertain;
        row.refreshTokenRejected = row.refreshTokenRejected || input.refreshTokenRejected === true;
        row.nextRefreshAt = nextRefreshAt;
        releaseIfOwner(row, input.owner);
        row.updatedAt = new Date(now.getTime());
        return true;
      }),

    markReconnectRequired: (input) =>
      run("markReconnectRequired", () => {
        const now = date(input.now, "now");
        const expectedVersion = int(input.expectedVersion, "expectedVersion");
        const row = find(input.userUlid);
        if (row === undefined || row.version !== expectedVersion) return false;
        // failure_count, rotation_uncertain and next_refresh_at are not in the SET list.
        row.status = "RECONNECT_REQUIRED";
        row.lastFailureCode = input.code;
        row.lastFailureAt = now;
        row.firstFailureAt ??= new Date(now.getTime());
        releaseIfOwner(row, input.owner);
        row.updatedAt = new Date(now.getTime());
        return true;
      }),

    reschedule: (input) =>
      run("reschedule", () => {
        const nextRefreshAt = date(input.nextRefreshAt, "nextRefreshAt");
        const expectedVersion = int(input.expectedVersion, "expectedVersion");
        const row = find(input.userUlid);
        const idleSince = date(input.idleSince, "idleSince");
        if (row === undefined || row.version !== expectedVersion || row.status !== "ACTIVE" || row.lastFailureAt !== null) return false;
        if (row.lastUsedAt !== null && row.lastUsedAt.getTime() >= idleSince.getTime()) return false;
        // Only next_refresh_at: no version, no updated_at, no audit row.
        row.nextRefreshAt = nextRefreshAt;
        return true;
      }),

    markRefreshTokenRejected: (input) =>
      run("markRefreshTokenRejected", () => {
        const expectedVersion = int(input.expectedVersion, "expectedVersion");
        const row = find(input.userUlid);
        if (row === undefined || row.version !== expectedVersion) return false;
        row.refreshTokenRejected = true;
        return true;
      }),

    touchLastUsed: (userUlid, now) =>
      run("touchLastUsed", () => {
        const nowAt = date(now, "now");
        const cutoff = nowAt.getTime() - 60_000;
        const row = find(userUlid);
        // updated_at is left alone: nothing about the pair changed.
        if (row !== undefined && (row.lastUsedAt === null || row.lastUsedAt.getTime() < cutoff)) row.lastUsedAt = nowAt;
      }),

    insertAudit: (entry: AuditEntry) =>
      run("insertAudit", () => {
        if (!OUTCOMES.includes(entry.outcome)) throw storeError(`unknown audit outcome ${String(entry.outcome)}`);
        const row = find(entry.userUlid);
        // cal_token_audit.user_ulid REFERENCES cal_token.
        if (row === undefined) throw storeError(`audit row for ${normalizeUlid(entry.userUlid)} violates the foreign key (no token row)`);
        // Through Prisma's create an Int field takes a fraction truncated (12.7 -> 12), unlike the ::int casts.
        const truncated = (v: number | null | undefined, field: string) =>
          v === null || v === undefined ? null : int(Math.trunc(v), field);
        insertAuditRow({
          userUlid: row.userUlid,
          outcome: entry.outcome,
          trigger: entry.trigger,
          errorCode: entry.errorCode ?? null,
          version: truncated(entry.version, "version"),
          durationMs: truncated(entry.durationMs, "durationMs"),
          // DEFAULT CURRENT_TIMESTAMP: the database's clock, not the caller's.
          createdAt: date(clock(), "clock()"),
        });
      }),

    seed(record) {
      const ulid = keyForWrite(record.userUlid);
      const now = date(clock(), "clock()");
      const row: TokenRecord = {
        kind: "managed",
        calUserId: null,
        accessToken: `seed_at_${ulid}`,
        refreshToken: `seed_rt_${ulid}`,
        accessTokenExpiresAt: new Date(now.getTime() + 3_600_000),
        refreshTokenExpiresAt: null,
        status: "ACTIVE",
        version: 1,
        leaseOwner: null,
        leaseUntil: null,
        rotationUncertain: false,
        refreshTokenRejected: false,
        failureCount: 0,
        firstFailureAt: null,
        lastFailureAt: null,
        lastFailureCode: null,
        lastRefreshedAt: null,
        nextRefreshAt: now,
        lastUsedAt: null,
        createdAt: now,
        updatedAt: now,
        ...record,
        userUlid: ulid,
      };
      const stored = copyRecord(row);
      rows.set(ulid, stored);
      return copyRecord(stored);
    },

    peek(userUlid) {
      const row = find(userUlid);
      return row === undefined ? null : copyRecord(row);
    },

    audits(userUlid) {
      const ulid = userUlid === undefined ? null : normalizeUlid(userUlid);
      return auditRows
        .filter((a) => ulid === null || a.userUlid === ulid)
        .map((a) => ({ ...a, createdAt: new Date(a.createdAt.getTime()) }));
    },

    failNext(method, error, failOpts = {}) {
      const times = failOpts.times ?? 1;
      const list = queued.get(method) ?? [];
      for (let i = 0; i < times; i++) list.push({ error, applied: failOpts.applied ?? false });
      queued.set(method, list);
    },

    failAll(method, error) {
      if (error === null) always.delete(method);
      else always.set(method, error);
    },

    setUndecryptable(userUlid, on = true) {
      const ulid = normalizeUlid(userUlid);
      if (on) undecryptable.add(ulid);
      else undecryptable.delete(ulid);
    },

    callCount(method) {
      return calls.get(method) ?? 0;
    },
  };
  return store;
}
