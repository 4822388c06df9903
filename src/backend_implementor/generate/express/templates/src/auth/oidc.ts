{% if oidc %}
import { and, eq, gt, lt, sql } from 'drizzle-orm';
import * as client from 'openid-client';
import type { OidcProvider } from '../config.js';
import type { Db } from '../db/client.js';
import { oidcLogins } from '../db/schema.js';
import { badRequest, HttpError, notFound } from '../errors.js';
import { hashSecret } from './sessions.js';

/** How long a user has at the provider before the login must start again. */
export const LOGIN_WINDOW_SECONDS = 600;

/** What the provider says about the user, once the ID token checked out. */
export interface OidcClaims {
  sub: string;
  email?: unknown;
  email_verified?: unknown;
}

const unreachable = (name: string) => new HttpError(502, `The identity provider "${name}" could not be reached; try again.`);

/**
 * OpenID Connect logins by authorization code with PKCE, through openid-client. A login's state is bound to
 * the browser that started it (a cookie the routes set) and kept server-side with its PKCE verifier and
 * nonce, for one use within LOGIN_WINDOW_SECONDS; the ID token's issuer, audience, expiry, signature (the
 * provider's JWKS) and nonce are checked by openid-client.
 */
export class OidcLogins {
  private readonly providers: Map<string, OidcProvider>;
  // Discovery documents, fetched once per provider; a failed fetch is forgotten so the next login retries.
  private readonly discovered = new Map<string, Promise<client.Configuration>>();

  constructor(
    private readonly db: Db,
    providers: readonly OidcProvider[],
    private readonly publicUrl: string,
    private readonly production: boolean,
  ) {
    this.providers = new Map(providers.map((p) => [p.name, p]));
  }

  redirectUri(name: string): string {
    return `${this.publicUrl}/auth/oidc/${name}/callback`;
  }

  /** Starts a login: the provider's authorization URL to send the browser to, and the state to bind to it. */
  async start(name: string, returnTo: string | undefined): Promise<{ url: string; state: string }> {
    const provider = this.provider(name);
    const config = await this.configuration(provider);
    const state = client.randomState();
    const nonce = client.randomNonce();
    const verifier = client.randomPKCECodeVerifier();
    const now = Date.now();
    await this.db.delete(oidcLogins).where(lt(oidcLogins.expires_at, new Date(now)));
    await this.db.insert(oidcLogins).values({
      state_hash: hashSecret(state),
      provider: name,
      nonce,
      code_verifier: verifier,
      return_to: returnTo,
      expires_at: new Date(now + LOGIN_WINDOW_SECONDS * 1000),
    });
    const url = client.buildAuthorizationUrl(config, {
      redirect_uri: this.redirectUri(name),
      scope: provider.scopes.join(' '),
      state,
      nonce,
      code_challenge: await client.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
    });
    return { url: url.href, state };
  }

  /**
   * Finishes a login at the callback: the state must be the one this browser started (`bound`, from its
   * cookie) and unused; then the code is redeemed and the ID token checked. Answers the verified claims.
   */
  async finish(name: string, query: URLSearchParams, bound: string | undefined): Promise<{ claims: OidcClaims; returnTo: string | null }> {
    const provider = this.provider(name);
    const state = query.get('state');
    // 403 like any failed CSRF check: whoever sent this callback is not the browser that started the login.
    if (!state || !bound || state !== bound) {
      throw new HttpError(403, 'The login state does not match the login this browser started; start again.');
    }
    const [login] = await this.db
      .delete(oidcLogins)
      .where(and(eq(oidcLogins.state_hash, hashSecret(state)), eq(oidcLogins.provider, name), gt(oidcLogins.expires_at, sql`now()`)))
      .returning();
    if (!login) throw badRequest('This login has expired or was already used; start again.');
    const error = query.get('error');
    if (error) throw badRequest(`The identity provider did not sign you in: ${error.slice(0, 100)}.`);
    const config = await this.configuration(provider);
    const callback = new URL(`${this.redirectUri(name)}?${query}`);
    try {
      const tokens = await client.authorizationCodeGrant(config, callback, {
        pkceCodeVerifier: login.code_verifier,
        expectedState: state,
        expectedNonce: login.nonce,
        idTokenExpected: true,
      });
      const idToken = tokens.claims();
      if (!idToken) throw badRequest('The identity provider sent no ID token.');
      let { email, email_verified } = idToken;
      // Providers that conform to OIDC strictly put scope claims (email) at the userinfo endpoint only.
      if (email === undefined) ({ email, email_verified } = await client.fetchUserInfo(config, tokens.access_token, idToken.sub));
      return { claims: { sub: idToken.sub, email, email_verified }, returnTo: login.return_to };
    } catch (error) {
      if (error instanceof HttpError) throw error;
      // The provider refused the code (used, expired, wrong verifier) or its answer did not check out.
      if (error instanceof client.ResponseBodyError || error instanceof client.AuthorizationResponseError) {
        throw badRequest(`The identity provider refused the login: ${error.error}.`);
      }
      if (error instanceof client.ClientError) {
        throw badRequest('The identity provider’s answer did not check out; start again.');
      }
      throw unreachable(name);
    }
  }

  private provider(name: string): OidcProvider {
    const provider = this.providers.get(name);
    if (!provider) throw notFound(`No OpenID provider "${name}" is configured on this server.`);
    return provider;
  }

  private configuration(provider: OidcProvider): Promise<client.Configuration> {
    let found = this.discovered.get(provider.name);
    if (!found) {
      const issuer = new URL(provider.issuer);
      // Plain http only for a provider on this machine, and never in production (config.ts refuses it).
      const local = !this.production && issuer.protocol === 'http:';
      found = client.discovery(issuer, provider.clientId, provider.clientSecret, undefined, {
        timeout: 10,
        ...(local ? { execute: [client.allowInsecureRequests] } : {}),
      });
      this.discovered.set(provider.name, found);
      found.catch(() => this.discovered.delete(provider.name));
    }
    return found.catch(() => {
      throw unreachable(provider.name);
    });
  }
}
{% endif %}
