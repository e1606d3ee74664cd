/**
 * Gauges of fleet-wide state kept in Redis (src/fleet/fleet-state.ts): what an operator must see at
 * once when token calls stop or pairs wait for the database. Read at scrape time through a short cache
 * shared by the three gauges; a failed read fails the scrape (503), never a page that looks healthy.
 */
import { Gauge, type Registry } from "prom-client";
import type { FleetState } from "../fleet/fleet-state.js";

export function registerFleetStateGauges(registry: Registry, state: () => Promise<FleetState>): void {
  new Gauge({
    name: "cal_token_calls_suspended",
    help: "1 while the configuration breaker has stopped token calls fleet-wide (Cal.com refused our client configuration)",
    registers: [registry],
    async collect() {
      this.set((await state()).callsSuspended ? 1 : 0);
    },
  });
  new Gauge({
    name: "cal_token_held_pairs",
    help: "Rotated pairs held in Redis because the database did not take them yet",
    registers: [registry],
    async collect() {
      this.set((await state()).heldPairsWaiting);
    },
  });
  new Gauge({
    name: "cal_token_held_pairs_quarantined",
    help: "Held-pair records set aside in the last 30 days because they did not authenticate or parse",
    registers: [registry],
    async collect() {
      this.set((await state()).heldPairsQuarantined);
    },
  });
}
