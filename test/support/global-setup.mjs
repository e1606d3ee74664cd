// Jest loads global setup outside its module system (no moduleNameMapper, no ESM transform), so the
// TypeScript implementation is loaded through tsx.
import { tsImport } from "tsx/esm/api";

export default async function globalSetup() {
  const mod = await tsImport("./global-setup-impl.ts", import.meta.url);
  await mod.default();
}
