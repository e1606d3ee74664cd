/**
 * Non-token Cal.com routes the project touches: bearer-protected /v2/me and /v2/calendars
 * (docs/calcom-api.md#resource-endpoints; bearer checks: docs/calcom-api.md#access-tokens-498-and-401-invalid-access-token)
 * and managed-user creation (docs/calcom-api.md#managed-user-creation).
 */
import { authenticateBearer, authenticateClient } from "./auth.js";
import type { Body, Ctx } from "./http-io.js";
import { nestError, nestSuccess } from "./http-io.js";
import type { User } from "./rows.js";
import type { CalcomState } from "./state.js";

function withUser(ctx: Ctx, state: CalcomState, answer: (user: User) => void): void {
  const auth = authenticateBearer(state, ctx.req.headers);
  if ("user" in auth) return answer(auth.user);
  nestError(ctx, auth.status, auth.code, auth.message);
}

function profile(user: User): Record<string, unknown> {
  return {
    id: user.id,
    email: user.email,
    username: `user${user.id}`,
    name: `Fake User ${user.id}`,
    timeFormat: 24,
    defaultScheduleId: null,
    weekStart: "Monday",
    timeZone: "Europe/London",
    organizationId: null,
  };
}

/** GET /v2/me */
export function me(ctx: Ctx, state: CalcomState): void {
  withUser(ctx, state, (user) => nestSuccess(ctx, 200, profile(user)));
}

/** GET /v2/calendars — one connected Google calendar, shaped like connected-calendars.output.ts. */
export function calendars(ctx: Ctx, state: CalcomState): void {
  withUser(ctx, state, (user) => {
    const externalId = `user${user.id}@example.com`;
    const integration = { name: "Google Calendar", type: "google_calendar", slug: "google-calendar" };
    const primary = { externalId, name: externalId, primary: true, readOnly: false, isSelected: true, credentialId: 1 };
    nestSuccess(ctx, 200, {
      connectedCalendars: [{ integration, credentialId: 1, primary, calendars: [primary] }],
      destinationCalendar: {
        id: 1,
        integration: "google_calendar",
        externalId,
        primaryEmail: externalId,
        userId: user.id,
        eventTypeId: null,
        credentialId: 1,
      },
    });
  });
}

/** POST /v2/oauth-clients/:clientId/users — 201 with the user and a token pair. */
export function createManagedUser(ctx: Ctx, state: CalcomState, clientId: string, body: Body): void {
  if (body === "invalid") return nestError(ctx, 400, "BadRequestException", "Bad Request Exception");
  const auth = authenticateClient(state, clientId, ctx.req.headers);
  if (auth) return nestError(ctx, auth.status, auth.code, auth.message);
  const email = body?.email;
  if (typeof email !== "string" || !email.includes("@")) {
    return nestError(ctx, 400, "BadRequestException", "Bad Request Exception");
  }
  // Cal.com stores `local+<clientId>@domain` so one e-mail can exist once per OAuth client.
  const at = email.lastIndexOf("@");
  const stored = `${email.slice(0, at)}+${clientId}${email.slice(at)}`;
  const existing = state.findUserByEmail(stored);
  if (existing) {
    const message = `User with the provided e-mail already exists. Existing user ID=${existing.id}`;
    return nestError(ctx, 409, "ConflictException", message);
  }
  const user = state.createUser("managed", clientId, stored);
  nestSuccess(ctx, 201, { user: profile(user), ...state.issueManagedPair(user) });
}
