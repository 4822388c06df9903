{% if auth %}
import { createHash{% if cookie_sessions %}, randomBytes{% endif %} } from 'node:crypto';
import { and, desc, eq, gt, {% if bearer_sessions %}inArray, {% endif %}isNull, ne, type SQL, sql } from 'drizzle-orm';
import type { Db } from '../db/client.js';
import { authSessions, {% if bearer_sessions %}refreshTokens{% else %}users{% endif %} } from '../db/schema.js';

/** Who sent a request, and through which login. */
export interface AuthUser {
  id: string;
  role: string;
  sessionId: string;
}

export interface SessionInfo {
  id: string;
  kind: 'bearer' | 'cookie';
  created_at: string;
  last_seen_at: string;
  expires_at: string;
  user_agent: string | null;
  current: boolean;
}

/**
 * How long an instance trusts what it last read about a session. A session ended on another instance stops
 * working here within this time; one ended here stops at once.
 */
export const RECHECK_MS = 5_000;
{% if cookie_sessions %}
/** last_seen_at is written at most this often per session: a write on every request would double its cost. */
const TOUCH_MS = 60_000;
{% endif %}
const MAX_KEPT = 10_000;

export const hashSecret = (secret: string): string => createHash('sha256').update(secret).digest('hex');

/** The server-side record of every login (auth_sessions), and what this instance last read of it. */
export class Sessions {
  // Keyed by session id{% if cookie_sessions %} and by cookie secret hash{% endif %}; an entry is trusted until `until`.
  private readonly kept = new Map<string, { until: number; user: AuthUser | undefined }>();

  constructor(
    private readonly db: Db,
    private readonly ttlSeconds: number,
{% if cookie_sessions %}
    private readonly idleSeconds: number,
{% endif %}
  ) {}

  /** Starts a session for a fresh login{% if cookie_sessions %}: its id and the secret only the cookie carries{% endif %}. */
  async start(
    userId: string,
    userAgent: string | undefined,
{% if bearer_sessions %}
  ): Promise<{ id: string; expiresAt: Date }> {
    const [row] = await this.db
      .insert(authSessions)
      .values({ user_id: userId, kind: 'bearer', user_agent: userAgent?.slice(0, 512), expires_at: this.expiry() })
      .returning({ id: authSessions.id, expiresAt: authSessions.expires_at });
{% else %}
  ): Promise<{ id: string; secret: string; expiresAt: Date }> {
    const secret = randomBytes(32).toString('base64url');
    const [row] = await this.db
      .insert(authSessions)
      .values({
        user_id: userId,
        kind: 'cookie',
        token_hash: hashSecret(secret),
        user_agent: userAgent?.slice(0, 512),
        expires_at: this.expiry(),
      })
      .returning({ id: authSessions.id, expiresAt: authSessions.expires_at });
{% endif %}
    if (!row) throw new Error('insert into auth_sessions returned no row');
{% if bearer_sessions %}
    return row;
{% else %}
    return { ...row, secret };
{% endif %}
  }
{% if bearer_sessions %}

  /**
   * Continues a session at a refresh: its absolute end, or undefined once it was ended or expired. A refresh
   * token from before sessions were recorded gets its session now (id = its family).
   */
  async resume(id: string, userId: string, userAgent: string | undefined): Promise<Date | undefined> {
    await this.db
      .insert(authSessions)
      .values({ id, user_id: userId, kind: 'bearer', user_agent: userAgent?.slice(0, 512), expires_at: this.expiry() })
      .onConflictDoNothing({ target: authSessions.id });
    const [row] = await this.db
      .update(authSessions)
      .set({ last_seen_at: new Date() })
      .where(and(eq(authSessions.id, id), eq(authSessions.user_id, userId), this.live()))
      .returning({ expiresAt: authSessions.expires_at });
    return row?.expiresAt;
  }

  /**
   * Whether a bearer session is still on: from memory when read within RECHECK_MS, else from the database.
   * (An access token stays valid only as long as the login it came from.)
   */
  alive(user: AuthUser): boolean | Promise<boolean> {
    const hit = this.kept.get(user.sessionId);
    if (hit && hit.until > Date.now()) return hit.user !== undefined;
    return this.db
      .select({ id: authSessions.id })
      .from(authSessions)
      .where(and(eq(authSessions.id, user.sessionId), eq(authSessions.user_id, user.id), this.live()))
      .then(([row]) => {
        this.keep(user.sessionId, row ? user : undefined);
        return row !== undefined;
      });
  }
{% else %}

  /** The user of a cookie's secret while its session is on; from memory when read within RECHECK_MS. */
  fromCookie(secret: string): AuthUser | undefined | Promise<AuthUser | undefined> {
    const key = hashSecret(secret);
    const hit = this.kept.get(key);
    if (hit && hit.until > Date.now()) return hit.user;
    return this.readCookie(key);
  }

  private async readCookie(key: string): Promise<AuthUser | undefined> {
    const [row] = await this.db
      .select({ id: authSessions.id, userId: users.id, role: users.role, lastSeen: authSessions.last_seen_at })
      .from(authSessions)
      .innerJoin(users, eq(users.id, authSessions.user_id))
      .where(and(eq(authSessions.token_hash, key), this.live()));
    const user = row && { id: row.userId, role: row.role, sessionId: row.id };
    if (row && Date.now() - row.lastSeen.getTime() > TOUCH_MS) {
      await this.db.update(authSessions).set({ last_seen_at: new Date() }).where(eq(authSessions.id, row.id));
    }
    this.keep(key, user);
    return user;
  }

  /** Ends the session a cookie names, if any (a login replaces the session the browser had). */
  async endCookie(secret: string): Promise<void> {
    const ended = await this.db
      .update(authSessions)
      .set({ revoked_at: new Date() })
      .where(and(eq(authSessions.token_hash, hashSecret(secret)), isNull(authSessions.revoked_at)))
      .returning({ id: authSessions.id });
    this.forget(ended.map((row) => row.id));
  }
{% endif %}

  /** The user's sessions that are still on, most recently used first. */
  async list(user: AuthUser): Promise<SessionInfo[]> {
    const rows = await this.db
      .select()
      .from(authSessions)
      .where(and(eq(authSessions.user_id, user.id), this.live()))
      .orderBy(desc(authSessions.last_seen_at), desc(authSessions.id));
    return rows.map((row) => ({
      id: row.id,
      kind: row.kind,
      created_at: row.created_at.toISOString(),
      last_seen_at: row.last_seen_at.toISOString(),
      expires_at: row.expires_at.toISOString(),
      user_agent: row.user_agent,
      current: row.id === user.sessionId,
    }));
  }

  /** Ends one of the user's sessions; false when they have no such session on. */
  async end(userId: string, id: string): Promise<boolean> {
    return (await this.endWhere(userId, eq(authSessions.id, id))) > 0;
  }

  /** Ends every session of the user, or every one but `keep` (a password change keeps the one making it). */
  async endAll(userId: string, keep?: string): Promise<void> {
    await this.endWhere(userId, keep === undefined ? undefined : ne(authSessions.id, keep));
  }

  private async endWhere(userId: string, which: SQL | undefined): Promise<number> {
    const now = new Date();
    const ended = await this.db
      .update(authSessions)
      .set({ revoked_at: now })
      .where(and(eq(authSessions.user_id, userId), isNull(authSessions.revoked_at), which))
      .returning({ id: authSessions.id });
    const ids = ended.map((row) => row.id);
{% if bearer_sessions %}
    if (ids.length > 0) {
      await this.db
        .update(refreshTokens)
        .set({ revoked_at: now })
        .where(and(inArray(refreshTokens.family_id, ids), isNull(refreshTokens.revoked_at)));
    }
{% endif %}
    this.forget(ids);
    return ids.length;
  }

  private forget(ids: string[]): void {
    if (ids.length === 0) return;
    const ended = new Set(ids);
    for (const [key, entry] of this.kept) {
      if (ended.has(key) || (entry.user && ended.has(entry.user.sessionId))) this.kept.delete(key);
    }
  }

  private keep(key: string, user: AuthUser | undefined): void {
    this.kept.delete(key);
    if (this.kept.size >= MAX_KEPT) {
      const oldest = this.kept.keys().next().value;
      if (oldest !== undefined) this.kept.delete(oldest);
    }
    this.kept.set(key, { until: Date.now() + RECHECK_MS, user });
  }

  /** Not ended, not past its absolute end{% if cookie_sessions %}, and used within the idle timeout{% endif %}. */
  private live() {
    return and(
      isNull(authSessions.revoked_at),
      gt(authSessions.expires_at, sql`now()`),
{% if cookie_sessions %}
      gt(authSessions.last_seen_at, sql`now() - make_interval(secs => ${this.idleSeconds})`),
{% endif %}
    );
  }

  private expiry(): Date {
    return new Date(Date.now() + this.ttlSeconds * 1000);
  }
}
{% endif %}
