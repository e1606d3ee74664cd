import type { TokenMeta, TokenRecord } from "../core/ports.js";
import type { TokenPair } from "../core/types.js";
import { Prisma } from "../generated/prisma/client.js";
import type { TokenCipher } from "./token-cipher.js";

/**
 * The one place a cal_token row becomes a TokenMeta / TokenRecord.
 *
 * Raw statements alias every column to its camelCase name (META_COLUMNS / RECORD_COLUMNS), so a
 * `RETURNING` row has the same shape as a Prisma `findUnique` with META_SELECT / RECORD_SELECT and
 * both go through toMeta / toRecord. Through @prisma/adapter-pg, raw timestamptz columns come back
 * as Date, INTEGER as number, enums as their label string (checked in the integration tests).
 */
/** A row as read: the same fields as TokenMeta (one definition, in core/ports.ts). */
export type MetaRow = TokenMeta;

export interface RecordRow extends MetaRow {
  accessTokenEnc: string;
  refreshTokenEnc: string;
}

// Single source for both the Prisma select and the SQL column list: [camelCase field, snake_case column].
const META_FIELDS = [
  ["userUlid", "user_ulid"],
  ["kind", "kind"],
  ["calUserId", "cal_user_id"],
  ["accessTokenExpiresAt", "access_token_expires_at"],
  ["refreshTokenExpiresAt", "refresh_token_expires_at"],
  ["status", "status"],
  ["version", "version"],
  ["leaseOwner", "lease_owner"],
  ["leaseUntil", "lease_until"],
  ["rotationUncertain", "rotation_uncertain"],
  ["refreshTokenRejected", "refresh_token_rejected"],
  ["failureCount", "failure_count"],
  ["firstFailureAt", "first_failure_at"],
  ["lastFailureAt", "last_failure_at"],
  ["lastFailureCode", "last_failure_code"],
  ["lastRefreshedAt", "last_refreshed_at"],
  ["nextRefreshAt", "next_refresh_at"],
  ["lastUsedAt", "last_used_at"],
  ["createdAt", "created_at"],
  ["updatedAt", "updated_at"],
] as const satisfies readonly (readonly [keyof MetaRow, string])[];
const SECRET_FIELDS = [
  ["accessTokenEnc", "access_token_enc"],
  ["refreshTokenEnc", "refresh_token_enc"],
] as const satisfies readonly (readonly [keyof RecordRow, string])[];

const columns = (fields: readonly (readonly [string, string])[]): Prisma.Sql =>
  Prisma.raw(fields.map(([field, col]) => `"${col}" AS "${field}"`).join(", "));

/** For `RETURNING ${META_COLUMNS}` / `SELECT ${RECORD_COLUMNS}`; constant text, no values. */
export const META_COLUMNS = columns(META_FIELDS);
export const RECORD_COLUMNS = columns([...META_FIELDS, ...SECRET_FIELDS]);

type SelectOf<F extends readonly (readonly [string, string])[]> = { [K in F[number][0]]: true };
const selectOf = <F extends readonly (readonly [string, string])[]>(fields: F): SelectOf<F> =>
  Object.fromEntries(fields.map(([field]) => [field, true])) as SelectOf<F>;

export const META_SELECT = selectOf(META_FIELDS) satisfies Prisma.CalTokenSelect;
export const RECORD_SELECT = selectOf([...META_FIELDS, ...SECRET_FIELDS] as const) satisfies Prisma.CalTokenSelect;

/** Copies field by field so the encrypted columns can never ride along in a meta object. */
export function toMeta(row: MetaRow): TokenMeta {
  return {
    userUlid: row.userUlid,
    kind: row.kind,
    calUserId: row.calUserId,
    accessTokenExpiresAt: row.accessTokenExpiresAt,
    refreshTokenExpiresAt: row.refreshTokenExpiresAt,
    status: row.status,
    version: row.version,
    leaseOwner: row.leaseOwner,
    leaseUntil: row.leaseUntil,
    rotationUncertain: row.rotationUncertain,
    refreshTokenRejected: row.refreshTokenRejected,
    failureCount: row.failureCount,
    firstFailureAt: row.firstFailureAt,
    lastFailureAt: row.lastFailureAt,
    lastFailureCode: row.lastFailureCode,
    lastRefreshedAt: row.lastRefreshedAt,
    nextRefreshAt: row.nextRefreshAt,
    lastUsedAt: row.lastUsedAt,
    createdAt: row.createdAt,
    updatedAt: row.updatedAt,
  };
}

/**
 * Decrypts with the row's own ULID and each column's field as associated data, so the two envelopes
 * of a row cannot be swapped; TokenDecryptError propagates.
 */
export function toRecord(row: RecordRow, cipher: TokenCipher): TokenRecord {
  return {
    ...toMeta(row),
    accessToken: cipher.decrypt(row.accessTokenEnc, row.userUlid, "access_token"),
    refreshToken: cipher.decrypt(row.refreshTokenEnc, row.userUlid, "refresh_token"),
  };
}

/** The two column values for a pair, each bound to the (upper-case) ULID and its own column. */
export function encryptPair(cipher: TokenCipher, userUlid: string, pair: Pick<TokenPair, "accessToken" | "refreshToken">) {
  return {
    accessEnc: cipher.encrypt(pair.accessToken, userUlid, "access_token"),
    refreshEnc: cipher.encrypt(pair.refreshToken, userUlid, "refresh_token"),
  };
}
