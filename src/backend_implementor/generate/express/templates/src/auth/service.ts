{% if auth %}
import { {% if bearer_sessions %}and, {% endif %}eq{% if bearer_sessions %}, isNull{% endif %} } from 'drizzle-orm';
import type { Config } from '../config.js';
import type { Db } from '../db/client.js';
import { {% if bearer_sessions %}refreshTokens, {% endif %}{% if oidc %}userIdentities, {% endif %}users } from '../db/schema.js';
import { conflict, {% if oidc %}forbidden, {% endif %}HttpError, unauthorized } from '../errors.js';
{% if oidc %}
import type { OidcClaims } from './oidc.js';
{% endif %}
import { hashPassword, verifyPassword } from './passwords.js';
import { type AuthUser, Sessions } from './sessions.js';
{% if bearer_sessions %}
import { hashRefreshToken, newRefreshToken, type SigningKey, secretKey, signAccessToken } from './tokens.js';
{% endif %}

/** Registration always gets this role; only an admin can change it later. */
export const DEFAULT_ROLE = {{ default_role | ts }};
export const ROLES = {{ roles | ts }} as const;

export interface PublicUser {
  id: string;
  email: string;
  role: string;
}
{% if bearer_sessions %}

export interface TokenPair {
  access_token: string;
  refresh_token: string;
  token_type: 'Bearer';
  expires_in: number;
}
{% else %}

/** A cookie login: the user, and the secret the session cookie carries until `expiresAt`. */
export interface CookieLogin {
  user: PublicUser;
  secret: string;
  expiresAt: Date;
}
{% endif %}

type UserRow = typeof users.$inferSelect;

export const toPublicUser = (row: UserRow): PublicUser => ({
  id: row.id,
  email: row.email,
  role: row.role,
});

const normaliseEmail = (email: string): string => email.trim().toLowerCase();

{% if bearer_sessions %}
type AuthConfig = Pick<Config, 'sessionTtlSeconds' | 'jwtSecret' | 'accessTtlSeconds' | 'refreshTtlSeconds'>;
{% else %}
type AuthConfig = Pick<Config, 'sessionTtlSeconds' | 'sessionIdleSeconds'>;
{% endif %}

export class AuthService {
  readonly sessions: Sessions;
{% if bearer_sessions %}
  private readonly secret: Promise<SigningKey>;
{% endif %}

  constructor(
    private readonly db: Db,
{% if bearer_sessions %}
    private readonly config: AuthConfig,
{% else %}
    config: AuthConfig,
{% endif %}
  ) {
{% if bearer_sessions %}
    this.sessions = new Sessions(db, config.sessionTtlSeconds);
    this.secret = secretKey(config.jwtSecret);
{% else %}
    this.sessions = new Sessions(db, config.sessionTtlSeconds, config.sessionIdleSeconds);
{% endif %}
  }
{% if bearer_sessions %}

  get jwtKey(): Promise<SigningKey> {
    return this.secret;
  }
{% endif %}

  async register(email: string, password: string): Promise<PublicUser> {
    const [row] = await this.db
      .insert(users)
      .values({ email: normaliseEmail(email), password_hash: await hashPassword(password), role: DEFAULT_ROLE })
      .onConflictDoNothing({ target: users.email })
      .returning();
    if (!row) throw conflict('An account with this email already exists.');
    return toPublicUser(row);
  }
{% if bearer_sessions %}

  /** A new session and its first tokens. */
  async login(email: string, password: string, userAgent: string | undefined): Promise<TokenPair> {
    return this.signIn(await this.checkCredentials(email, password), userAgent);
  }

  /** A new session for a user whose identity was just proven, and its first tokens. */
  async signIn(user: UserRow, userAgent: string | undefined): Promise<TokenPair> {
    const session = await this.sessions.start(user.id, userAgent);
    return this.issue(user, session.id, session.expiresAt);
  }

  /** Rotates a refresh token; presenting an already-rotated token revokes its whole family (theft signal). */
  async refresh(refreshToken: string, userAgent: string | undefined): Promise<TokenPair> {
    const now = new Date();
    const [revoked] = await this.db
      .update(refreshTokens)
      .set({ revoked_at: now })
      .where(and(eq(refreshTokens.token_hash, hashRefreshToken(refreshToken)), isNull(refreshTokens.revoked_at)))
      .returning();
    if (!revoked) {
      await this.revokeFamilyOf(refreshToken);
      throw unauthorized('Invalid refresh token.');
    }
    if (revoked.expires_at <= now) throw unauthorized('Refresh token expired.');
    const sessionEnd = await this.sessions.resume(revoked.family_id, revoked.user_id, userAgent);
    if (!sessionEnd) throw unauthorized('The session has ended; log in again.');
    const [user] = await this.db.select().from(users).where(eq(users.id, revoked.user_id));
    if (!user) throw unauthorized('Invalid refresh token.');
    return this.issue(user, revoked.family_id, sessionEnd);
  }

  /** Ends the session: its refresh tokens and access tokens stop working. Unknown tokens are ignored (idempotent). */
  async logout(refreshToken: string): Promise<void> {
    await this.revokeFamilyOf(refreshToken);
  }
{% else %}

  /**
   * A new session with a new secret; the session the browser had before (`previous`, its cookie) is ended,
   * so an id planted before the login is worth nothing after it.
   */
  async login(
    email: string,
    password: string,
    userAgent: string | undefined,
    previous: string | undefined,
  ): Promise<CookieLogin> {
    return this.signIn(await this.checkCredentials(email, password), userAgent, previous);
  }

  /** A new session for a user whose identity was just proven; the browser's previous one (if any) ends. */
  async signIn(user: UserRow, userAgent: string | undefined, previous: string | undefined): Promise<CookieLogin> {
    if (previous) await this.sessions.endCookie(previous);
    const session = await this.sessions.start(user.id, userAgent);
    return { user: toPublicUser(user), secret: session.secret, expiresAt: session.expiresAt };
  }

  /** Ends the session on the server (the cookie alone would still be replayable). */
  async logout(user: AuthUser): Promise<void> {
    await this.sessions.end(user.id, user.sessionId);
  }
{% endif %}

{% if oidc %}
  /**
   * The user an OpenID login proves: the one linked to this provider's subject, else the account with the
   * email the provider verified (now linked: it may sign in either way), else a new account. An email the
   * provider does not vouch for links and creates nothing, so it cannot take over a password account.
   */
  async oidcUser(provider: string, claims: OidcClaims): Promise<UserRow> {
    const key = `${provider}|${claims.sub}`;
    const [linked] = await this.db
      .select({ user: users })
      .from(userIdentities)
      .innerJoin(users, eq(users.id, userIdentities.user_id))
      .where(eq(userIdentities.id, key));
    if (linked) return linked.user;
    if (typeof claims.email !== 'string' || claims.email_verified !== true) {
      throw forbidden(`The identity provider did not vouch for your email address, so no account was linked or created.`);
    }
    const email = normaliseEmail(claims.email);
    await this.db
      .insert(users)
      .values({ email, password_hash: null, role: DEFAULT_ROLE })
      .onConflictDoNothing({ target: users.email });
    const [user] = await this.db.select().from(users).where(eq(users.email, email));
    if (!user) throw new Error(`no account for ${email} after insert`);
    await this.db
      .insert(userIdentities)
      .values({ id: key, user_id: user.id, provider, subject: claims.sub, email })
      .onConflictDoNothing({ target: userIdentities.id });
    return user;
  }

{% endif %}
  async me(userId: string): Promise<PublicUser> {
    const [user] = await this.db.select().from(users).where(eq(users.id, userId));
    if (!user) throw unauthorized();
    return toPublicUser(user);
  }

  /** Sets a new password after checking the current one; every other session of the user ends. */
  async changePassword(user: AuthUser, current: string, next: string): Promise<void> {
    const [row] = await this.db.select().from(users).where(eq(users.id, user.id));
    if (!row) throw unauthorized();
    if (!(await verifyPassword(row.password_hash, current))) {
      // 403, not 400: the request is well-formed; the caller failed to prove they know the password.
      throw new HttpError(403, 'The current password is wrong.', [
        { path: 'current_password', message: 'does not match the current password' },
      ]);
    }
    await this.db
      .update(users)
      .set({ password_hash: await hashPassword(next), updated_at: new Date() })
      .where(eq(users.id, user.id));
    await this.sessions.endAll(user.id, user.sessionId);
  }

  /** Creates or updates the admin account from ADMIN_EMAIL / ADMIN_PASSWORD at start. */
  async seedAdmin(email: string, password: string, role: string): Promise<void> {
    const passwordHash = await hashPassword(password);
    await this.db
      .insert(users)
      .values({ email: normaliseEmail(email), password_hash: passwordHash, role })
      .onConflictDoUpdate({ target: users.email, set: { password_hash: passwordHash, role, updated_at: new Date() } });
  }

  private async checkCredentials(email: string, password: string): Promise<UserRow> {
    const [user] = await this.db.select().from(users).where(eq(users.email, normaliseEmail(email)));
    const ok = await verifyPassword(user?.password_hash, password);
    if (!user || !ok) throw unauthorized('Wrong email or password.');
    return user;
  }
{% if bearer_sessions %}

  private async revokeFamilyOf(refreshToken: string): Promise<void> {
    const [token] = await this.db
      .select({ user_id: refreshTokens.user_id, family_id: refreshTokens.family_id })
      .from(refreshTokens)
      .where(eq(refreshTokens.token_hash, hashRefreshToken(refreshToken)));
    if (!token) return;
    // Ending the session revokes its refresh tokens; a family from before sessions were recorded has none.
    if (await this.sessions.end(token.user_id, token.family_id)) return;
    await this.db
      .update(refreshTokens)
      .set({ revoked_at: new Date() })
      .where(and(eq(refreshTokens.family_id, token.family_id), isNull(refreshTokens.revoked_at)));
  }

  /** An access token and a refresh token of the session, neither outliving it. */
  private async issue(user: UserRow, sessionId: string, sessionEnd: Date): Promise<TokenPair> {
    const refresh = newRefreshToken();
    const refreshEnd = Math.min(Date.now() + this.config.refreshTtlSeconds * 1000, sessionEnd.getTime());
    await this.db.insert(refreshTokens).values({
      user_id: user.id,
      family_id: sessionId,
      token_hash: refresh.hash,
      expires_at: new Date(refreshEnd),
    });
    const accessTtl = Math.max(1, Math.min(this.config.accessTtlSeconds, Math.floor((refreshEnd - Date.now()) / 1000)));
    const subject = { id: user.id, role: user.role, sessionId };
    return {
      access_token: await signAccessToken(subject, await this.secret, accessTtl),
      refresh_token: refresh.token,
      token_type: 'Bearer',
      expires_in: accessTtl,
    };
  }
{% endif %}
}
{% endif %}
