{% if auth %}
import { randomUUID } from 'node:crypto';
import { and, eq, isNull } from 'drizzle-orm';
import type { Config } from '../config.js';
import type { Db } from '../db/client.js';
import { refreshTokens, users } from '../db/schema.js';
import { conflict, unauthorized } from '../errors.js';
import { hashPassword, verifyPassword } from './passwords.js';
import { hashRefreshToken, newRefreshToken, type SigningKey, secretKey, signAccessToken } from './tokens.js';

/** Registration always gets this role; only an admin can change it later. */
export const DEFAULT_ROLE = {{ default_role | ts }};
export const ROLES = {{ roles | ts }} as const;

export interface PublicUser {
  id: string;
  email: string;
  role: string;
}

export interface TokenPair {
  access_token: string;
  refresh_token: string;
  token_type: 'Bearer';
  expires_in: number;
}

export const toPublicUser = (row: typeof users.$inferSelect): PublicUser => ({
  id: row.id,
  email: row.email,
  role: row.role,
});

const normaliseEmail = (email: string): string => email.trim().toLowerCase();

export class AuthService {
  private readonly secret: Promise<SigningKey>;

  constructor(
    private readonly db: Db,
    private readonly config: Pick<Config, 'jwtSecret' | 'accessTtlSeconds' | 'refreshTtlSeconds'>,
  ) {
    this.secret = secretKey(config.jwtSecret);
  }

  get jwtKey(): Promise<SigningKey> {
    return this.secret;
  }

  async register(email: string, password: string): Promise<PublicUser> {
    const [row] = await this.db
      .insert(users)
      .values({ email: normaliseEmail(email), password_hash: await hashPassword(password), role: DEFAULT_ROLE })
      .onConflictDoNothing({ target: users.email })
      .returning();
    if (!row) throw conflict('An account with this email already exists.');
    return toPublicUser(row);
  }

  async login(email: string, password: string): Promise<TokenPair> {
    const [user] = await this.db.select().from(users).where(eq(users.email, normaliseEmail(email)));
    const ok = await verifyPassword(user?.password_hash, password);
    if (!user || !ok) throw unauthorized('Wrong email or password.');
    return this.issue(user, randomUUID());
  }

  /** Rotates a refresh token; presenting an already-rotated token revokes its whole family (theft signal). */
  async refresh(refreshToken: string): Promise<TokenPair> {
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
    const [user] = await this.db.select().from(users).where(eq(users.id, revoked.user_id));
    if (!user) throw unauthorized('Invalid refresh token.');
    return this.issue(user, revoked.family_id);
  }

  /** Ends the session: every token of this login stops working. Unknown tokens are ignored (idempotent). */
  async logout(refreshToken: string): Promise<void> {
    await this.revokeFamilyOf(refreshToken);
  }

  async me(userId: string): Promise<PublicUser> {
    const [user] = await this.db.select().from(users).where(eq(users.id, userId));
    if (!user) throw unauthorized();
    return toPublicUser(user);
  }

  /** Creates or updates the admin account from ADMIN_EMAIL / ADMIN_PASSWORD at start. */
  async seedAdmin(email: string, password: string, role: string): Promise<void> {
    const passwordHash = await hashPassword(password);
    await this.db
      .insert(users)
      .values({ email: normaliseEmail(email), password_hash: passwordHash, role })
      .onConflictDoUpdate({ target: users.email, set: { password_hash: passwordHash, role, updated_at: new Date() } });
  }

  private async revokeFamilyOf(refreshToken: string): Promise<void> {
    const [token] = await this.db
      .select({ family_id: refreshTokens.family_id })
      .from(refreshTokens)
      .where(eq(refreshTokens.token_hash, hashRefreshToken(refreshToken)));
    if (!token) return;
    await this.db
      .update(refreshTokens)
      .set({ revoked_at: new Date() })
      .where(and(eq(refreshTokens.family_id, token.family_id), isNull(refreshTokens.revoked_at)));
  }

  private async issue(user: typeof users.$inferSelect, familyId: string): Promise<TokenPair> {
    const refresh = newRefreshToken();
    await this.db.insert(refreshTokens).values({
      user_id: user.id,
      family_id: familyId,
      token_hash: refresh.hash,
      expires_at: new Date(Date.now() + this.config.refreshTtlSeconds * 1000),
    });
    return {
      access_token: await signAccessToken({ id: user.id, role: user.role }, await this.secret, this.config.accessTtlSeconds),
      refresh_token: refresh.token,
      token_type: 'Bearer',
      expires_in: this.config.accessTtlSeconds,
    };
  }
}
{% endif %}
