/**
 * Authorization codes of the OAuth 2.0 apps (docs/calcom-api.md#oauth2-authorization-code). Cal.com
 * issues one when a user approves the app; here a test hook mints it, for a new grant or for a user of
 * the app reconnecting. A code is single use, lives ten minutes on the fake's clock and may be bound to a
 * redirect URI and a PKCE S256 challenge (always, for a public client). Codes are secrets: each one is
 * reported to `onIssue`, so the suite's secret scan looks for them in the logs too.
 */
import { createHash } from "node:crypto";
import { newToken, type OAuth2Pair } from "./rows.js";
import type { CalcomState } from "./state.js";
import type { AuthorizationCodeOptions, AuthorizationCodeSeed } from "./types.js";

export const CODE_TTL_MS = 10 * 60_000;

interface CodeRow {
  clientId: string;
  userId: number;
  redirectUri: string | null;
  challenge: string | null;
  expiresAt: number;
}

/** What the token endpoint sends with grant_type=authorization_code, besides the client's credentials. */
export interface CodeRequest {
  clientId: string;
  code: string;
  redirectUri: string | undefined;
  codeVerifier: string | undefined;
}

/** `error_description` of the invalid_grant answer, or ok. */
export type CodeCheck = "ok" | "code_invalid_or_expired" | "client_id_mismatch" | "redirect_uri_mismatch" | "invalid_code_verifier";

export const s256 = (verifier: string): string => createHash("sha256").update(verifier).digest("base64url");

export class AuthorizationCodes {
  private readonly live = new Map<string, CodeRow>();

  constructor(
    private readonly state: CalcomState,
    private readonly onIssue: (secret: string) => void,
  ) {}

  mint(opts: AuthorizationCodeOptions = {}): AuthorizationCodeSeed {
    const clientId = opts.clientId ?? this.state.defaultClientId("oauth2");
    const secret = this.state.clientSecret("oauth2", clientId);
    if (secret === undefined) throw new Error(`fake-calcom: unknown oauth2 client ${clientId}`);
    if (secret === null && opts.codeChallenge === undefined)
      throw new Error("fake-calcom: a public client's codes need a PKCE codeChallenge");
    const user =
      opts.calUserId === undefined
        ? this.state.createUser("oauth2", clientId, undefined, opts.accessTokenTtlMs)
        : this.state.getUser(opts.calUserId);
    if (user?.kind !== "oauth2" || user.clientId !== clientId)
      throw new Error(`fake-calcom: user ${opts.calUserId} is not a user of ${clientId}`);
    const code = newToken("fake_code_");
    const expiresAt = this.state.now() + CODE_TTL_MS;
    this.live.set(code, {
      clientId,
      userId: user.id,
      redirectUri: opts.redirectUri ?? null,
      challenge: opts.codeChallenge ?? null,
      expiresAt,
    });
    this.onIssue(code);
    return { code, calUserId: user.id, expiresAt };
  }

  /** The request-start checks, in the order an RFC 6749 server makes them. Counts refused codes. */
  check(req: CodeRequest): CodeCheck {
    const verdict = this.verdict(req);
    if (verdict !== "ok") this.state.stats.rejectedCodes++;
    return verdict;
  }

  /** The exchange's transaction: the code is deleted and a pair issued; null if another exchange took the code meanwhile. */
  commit(code: string): OAuth2Pair | null {
    const row = this.live.get(code);
    const user = row && this.state.getUser(row.userId);
    if (!row || !user) {
      this.state.stats.rejectedCodes++;
      return null;
    }
    this.live.delete(code);
    this.state.stats.codeExchanges++;
    return this.state.issueOAuth2Pair(user);
  }

  private verdict(req: CodeRequest): CodeCheck {
    const row = this.live.get(req.code);
    if (!row || this.state.now() >= row.expiresAt) return "code_invalid_or_expired";
    if (row.clientId !== req.clientId) return "client_id_mismatch";
    if (row.redirectUri !== null && req.redirectUri !== row.redirectUri) return "redirect_uri_mismatch";
    if (row.challenge !== null && (req.codeVerifier === undefined || s256(req.codeVerifier) !== row.challenge))
      return "invalid_code_verifier";
    return "ok";
  }
}
