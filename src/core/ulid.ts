/** Crockford base32 ULID: 26 chars, first char 0-7 (48-bit timestamp). Case-insensitive. */
const ULID_RE = /^[0-7][0-9A-HJKMNP-TV-Z]{25}$/i;

export function isUlid(value: unknown): value is string {
  return typeof value === "string" && ULID_RE.test(value);
}

/** Canonical (upper-case) form, as stored in the database. */
export function normalizeUlid(value: string): string {
  return value.toUpperCase();
}
