{% if auth %}
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { errors, jwtVerify, SignJWT } from 'jose';

export interface AuthUser {
  id: string;
  role: string;
}

const ALGORITHM = 'HS256';
const ISSUER = {{ name | ts }};

export const secretKey = (secret: string): Uint8Array => new TextEncoder().encode(secret);

export async function signAccessToken(user: AuthUser, secret: Uint8Array, ttlSeconds: number): Promise<string> {
  return new SignJWT({ role: user.role })
    .setProtectedHeader({ alg: ALGORITHM, typ: 'JWT' })
    .setSubject(user.id)
    .setJti(randomUUID())
    .setIssuer(ISSUER)
    .setIssuedAt()
    .setExpirationTime(`${ttlSeconds}s`)
    .sign(secret);
}

/** The token's user, or undefined for anything not signed by us with HS256 and unexpired (alg is pinned). */
export async function verifyAccessToken(token: string, secret: Uint8Array): Promise<AuthUser | undefined> {
  try {
    const { payload } = await jwtVerify(token, secret, { algorithms: [ALGORITHM], issuer: ISSUER });
    if (typeof payload.sub !== 'string' || typeof payload.role !== 'string' || !payload.jti) return undefined;
    return { id: payload.sub, role: payload.role };
  } catch (error) {
    if (error instanceof errors.JOSEError) return undefined;
    throw error;
  }
}

/** Refresh tokens are opaque random strings; only their SHA-256 is stored. */
export function newRefreshToken(): { token: string; hash: string } {
  const token = randomBytes(32).toString('base64url');
  return { token, hash: hashRefreshToken(token) };
}

export const hashRefreshToken = (token: string): string => createHash('sha256').update(token).digest('hex');
{% endif %}
