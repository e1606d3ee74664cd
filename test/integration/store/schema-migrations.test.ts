/**
 * prisma/schema.prisma and prisma/migrations must describe the same database: migrations are applied
 * here by our runner (src/store/migrate.ts) and by `prisma migrate deploy` in production, while the
 * client is generated from the schema. Every model field and enum value of the generated client must
 * exist in a freshly migrated database, and the runner must record migrations the way Prisma does.
 */
import { readdirSync } from "node:fs";
import pg from "pg";
import { CalTokenAlertState, CalTokenKind, CalTokenOutcome, CalTokenStatus, Prisma } from "../../../src/generated/prisma/client.js";
import { applyMigrations, MIGRATIONS_DIR } from "../../../src/store/migrate.js";
import { createPrisma } from "../../../src/store/prisma.js";
import { testDatabaseUrl } from "../../support/harness.js";

const prisma = createPrisma(testDatabaseUrl(), { max: 1 });
afterAll(() => prisma.$disconnect());

const selectAll = (fields: Record<string, string>) => Object.fromEntries(Object.values(fields).map((f) => [f, true]));

it("every field of every model can be selected from the migrated database", async () => {
  // A missing column or table makes Prisma throw; an empty result is fine.
  await expect(prisma.calToken.findFirst({ select: selectAll(Prisma.CalTokenScalarFieldEnum) })).resolves.toBeDefined();
  await expect(prisma.calTokenAudit.findFirst({ select: selectAll(Prisma.CalTokenAuditScalarFieldEnum) })).resolves.toBeDefined();
  await expect(prisma.calTokenEvent.findFirst({ select: selectAll(Prisma.CalTokenEventScalarFieldEnum) })).resolves.toBeDefined();
});

it.each([
  ["CalTokenStatus", CalTokenStatus],
  ["CalTokenKind", CalTokenKind],
  ["CalTokenOutcome", CalTokenOutcome],
  ["CalTokenAlertState", CalTokenAlertState],
])("enum %s has the same values in the database", async (name, values) => {
  const rows = await prisma.$queryRawUnsafe<{ v: string }[]>(`SELECT unnest(enum_range(NULL::"${name}"))::text AS v`);
  expect(rows.map((r) => r.v).sort()).toEqual(Object.values(values).sort());
});

it("records every migration like prisma migrate deploy, and re-applying is a no-op", async () => {
  const names = readdirSync(MIGRATIONS_DIR, { withFileTypes: true })
    .filter((d) => d.isDirectory())
    .map((d) => d.name)
    .sort();
  const client = new pg.Client({ connectionString: testDatabaseUrl() });
  await client.connect();
  try {
    const rows = await client.query<{ migration_name: string; checksum: string; finished_at: Date | null; applied_steps_count: number }>(
      `SELECT migration_name, checksum, finished_at, applied_steps_count FROM "_prisma_migrations" ORDER BY migration_name`,
    );
    expect(rows.rows.map((r) => r.migration_name)).toEqual(names);
    for (const r of rows.rows) {
      expect(r.checksum).toMatch(/^[0-9a-f]{64}$/);
      expect(r.finished_at).not.toBeNull();
      expect(r.applied_steps_count).toBe(1);
    }
  } finally {
    await client.end();
  }
  await expect(applyMigrations(testDatabaseUrl(), MIGRATIONS_DIR)).resolves.toEqual({ applied: [], skipped: names });
});
