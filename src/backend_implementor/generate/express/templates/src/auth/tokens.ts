{% if bearer_sessions %}
import { randomBytes, randomUUID, webcrypto } from 'node:crypto';
import { errors, jwtVerify, SignJWT } from 'jose';
import { type AuthUser, hashSecret } from './sessions.js';

const ALGORITHM = 'HS256';
const ISSUER = {{ name | ts }};

export type SigningKey = webcrypto.CryptoKey;

/**
 * The signing key, imported once: handed raw bytes, jose imports a WebCrypto key anew on every sign and
 * verify, which was a fifth of an authenticated request's CPU.
 */
export const secretKey = (secret: string): Promise<SigningKey> =>
  webcrypto.subtle.importKey('raw', new TextEncoder().encode(secret), { name: 'HMAC', hash: 'SHA-256' }, false, [
    'sign',
    'verify',
  ]);

export async function signAccessToken(user: AuthUser, secret: SigningKey, ttlSeconds: number): Promise<string> {
  return new SignJWT({ role: user.role, sid: user.sessionId })
    .setProtectedHeader({ alg: ALGORITHM, typ: 'JWT' })
    .setSubject(user.id)
    .setJti(randomUUID())
    .setIssuer(ISSUER)
    .setIssuedAt()
    .setExpirationTime(`${ttlSeconds}s`)
    .sign(secret);
}

/**
 * The token's user and expiry (ms), or undefined for anything not signed by us with HS256, unexpired and
 * with the claims we issue (alg is pinned).
 */
export async function verifyAccessToken(
  token: string,
  secret: SigningKey,
): Promise<{ user: AuthUser; expiresAt: number } | undefined> {
  try {
    const { payload } = await jwtVerify(token, secret, {
      algorithms: [ALGORITHM],
      issuer: ISSUER,
      requiredClaims: ['sub', 'exp', 'jti'],
    });
    const { sub, role, sid, exp } = payload;
    // A token without a session (issued before sessions were recorded) is refused: its refresh gets one.
    if (typeof sub !== 'string' || typeof role !== 'string' || typeof sid !== 'string' || exp === undefined) {
      return undefined;
    }
    return { user: { id: sub, role, sessionId: sid }, expiresAt: exp * 1000 };
  } catch (error) {
    if (error instanceof errors.JOSEError) return undefined;
    throw error;
  }
}

/**
 * Access tokens this process has verified, kept until they expire. A client sends the same token with every
 * request of its lifetime, and checking the HMAC again (a WebCrypto job off the main thread and back) was
 * the largest cost of an authenticated request. Keyed by the whole token, signature included, so only the
 * exact string that verified is answered from here; one instance per key, bounded, oldest entries out first.
 */
export class VerifiedTokens {
  private readonly entries = new Map<string, { user: AuthUser; expiresAt: number }>();

  constructor(
    private readonly secret: Promise<SigningKey>,
    private readonly max = 10_000,
  ) {}

  get size(): number {
    return this.entries.size;
  }

  /** The user of a token verified before and not yet expired, answered without waiting; else undefined. */
  kept(token: string): AuthUser | undefined {
    const cached = this.entries.get(token);
    return cached && cached.expiresAt > Date.now() ? cached.user : undefined;
  }

  async verify(token: string): Promise<AuthUser | undefined> {
    const kept = this.kept(token);
    if (kept) return kept;
    this.entries.delete(token);
    const verified = await verifyAccessToken(token, await this.secret);
    if (!verified) return undefined;
    if (this.entries.size >= this.max) {
      const oldest = this.entries.keys().next().value;
      if (oldest !== undefined) this.entries.delete(oldest);
    }
    this.entries.set(token, verified);
    return verified.user;
  }
}

/** Refresh tokens are opaque random strings; only their SHA-256 is stored. */
export function newRefreshToken(): { token: string; hash: string } {
  const token = randomBytes(32).toString('base64url');
  return { token, hash: hashRefreshToken(token) };
}

export const hashRefreshToken = hashSecret;
{% endif %}
