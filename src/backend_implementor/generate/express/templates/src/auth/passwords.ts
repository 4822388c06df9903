{% if auth %}
import { hash, verify } from '@node-rs/argon2';

// @node-rs/argon2 defaults to argon2id (m=19456 KiB, t=2, p=1), the OWASP-recommended baseline.
export const hashPassword = (password: string): Promise<string> => hash(password);

// Verifying against a fixed hash when the user does not exist keeps login timing uniform.
const DUMMY_HASH = await hash('timing-equaliser-not-a-real-password');

export async function verifyPassword(passwordHash: string | null | undefined, password: string): Promise<boolean> {
  try {
    return await verify(passwordHash ?? DUMMY_HASH, password);
  } catch {
    return false;
  }
}
{% endif %}
