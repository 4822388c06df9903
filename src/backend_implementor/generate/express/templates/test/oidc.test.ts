{% if oidc %}
{% set provider = oidc[0] %}
import { createHash, generateKeyPairSync } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { eq } from 'drizzle-orm';
import Provider from 'oidc-provider';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_ROLE } from '../src/auth/service.js';
import { oidcLogins, userIdentities, users } from '../src/db/schema.js';
import { PASSWORD, setup, type TestContext } from './helpers.js';

// A real OpenID provider (oidc-provider, a certified implementation) on 127.0.0.1, logging in whichever
// account a test names; the browser's part (redirects and cookies) is played by `Browser` below.
const PUBLIC_URL = 'http://localhost:3000';
const PROVIDER = {{ provider.name | ts }};
const CLIENT = { client_id: 'journal-test', client_secret: 'journal-test-secret' };

interface Account {
  sub: string;
  email: string;
  email_verified: boolean;
}

let t: TestContext;
let issuer: string;
let server: Server;
let signingIn: Account;

beforeAll(async () => {
  let provider: Provider | undefined;
  // The provider's login and consent pages: grant whatever the client asked for, as `signingIn`.
  server = createServer(async (req, res) => {
    if (!provider) return void res.writeHead(503).end();
    if (!req.url?.startsWith('/interaction/')) return provider.callback()(req, res);
    const details = await provider.interactionDetails(req, res);
    const grant = new provider.Grant({ accountId: signingIn.sub, clientId: String(details.params.client_id) });
    grant.addOIDCScope(String(details.params.scope));
    const grantId = await grant.save();
    await provider.interactionFinished(req, res, { login: { accountId: signingIn.sub }, consent: { grantId } });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  provider = new Provider(issuer, {
    clients: [{ ...CLIENT, redirect_uris: [`${PUBLIC_URL}/auth/oidc/${PROVIDER}/callback`] }],
    jwks: { keys: [{ ...privateKey.export({ format: 'jwk' }), kid: 'test', alg: 'RS256', use: 'sig' }] },
    cookies: { keys: ['test-cookie-signing-key'] },
    claims: { openid: ['sub'], email: ['email', 'email_verified'] },
    findAccount: (_ctx, sub) => ({ accountId: sub, claims: () => ({ ...signingIn, sub }) }),
    features: { devInteractions: { enabled: false } },
    interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
    pkce: { required: () => true },
  });
  t = await setup({
    PUBLIC_URL,
    OIDC_{{ provider.env }}_ISSUER: issuer,
    OIDC_{{ provider.env }}_CLIENT_ID: CLIENT.client_id,
    OIDC_{{ provider.env }}_CLIENT_SECRET: CLIENT.client_secret,
  });
});

afterAll(async () => {
  await t?.close();
  await new Promise((resolve) => server?.close(resolve));
});

/** A browser at the provider: follows its redirects with its cookies, until it is sent back to the app. */
async function atProvider(url: string): Promise<URL> {
  const jar = new Map<string, string>();
  let next = new URL(url);
  for (let hops = 0; hops < 10; hops++) {
    if (next.href.startsWith(PUBLIC_URL)) return next;
    const res = await fetch(next, {
      redirect: 'manual',
      headers: { cookie: [...jar].map(([k, v]) => `${k}=${v}`).join('; ') },
    });
    for (const header of res.headers.getSetCookie()) {
      const [pair] = header.split(';');
      const [name, ...value] = (pair ?? '').split('=');
      if (name) jar.set(name, value.join('='));
    }
    const location = res.headers.get('location');
    if (!location) throw new Error(`the provider answered ${res.status} at ${next}: ${await res.text()}`);
    next = new URL(location, next);
  }
  throw new Error('too many redirects at the provider');
}

/** Starts a login at the app: the provider URL it redirects to and the cookie binding its state. */
async function start(query = '') {
  const res = await request(t.app).get(`/auth/oidc/${PROVIDER}/login${query}`).expect(302);
  const cookie = (res.headers['set-cookie'] as unknown as string[]).find((c) => c.includes('oidc-state='));
  expect(cookie).toMatch(/HttpOnly/);
  expect(cookie).toMatch(/SameSite=Lax/);
  return { location: res.headers.location as string, cookie: cookie!.split(';')[0]! };
}

/** The provider's answer to the app's callback (path and query), as the browser would bring it back. */
const callback = (back: URL, cookie?: string) => {
  const req = request(t.app).get(back.pathname + back.search);
  return cookie ? req.set('Cookie', cookie) : req;
};

/** A whole login as `account`: the app's answer to the callback, which must have this status. */
async function signIn(account: Account, status: number, query = ''): Promise<request.Response> {
  signingIn = account;
  const { location, cookie } = await start(query);
  return callback(await atProvider(location), cookie).expect(status);
}

let subjects = 0;
const account = (email: string, email_verified = true): Account => ({ sub: `subject-${++subjects}`, email, email_verified });
{% if cookie_sessions %}
const sessionOf = (res: request.Response) =>
  (res.headers['set-cookie'] as unknown as string[]).find((c) => /^(__Host-)?session=[^;]/.test(c))?.split(';')[0];
const me = (res: request.Response) => request(t.app).get('/auth/me').set('Cookie', sessionOf(res) ?? '');
{% else %}
const me = (res: request.Response) => request(t.app).get('/auth/me').set('Authorization', `Bearer ${res.body.access_token}`);
{% endif %}

describe('OpenID Connect login', () => {
  it('redirects to the provider with PKCE (S256), state, nonce and the registered redirect URI', async () => {
    const { location } = await start();
    const url = new URL(location);
    expect(url.origin).toBe(issuer);
    expect(Object.fromEntries(url.searchParams)).toMatchObject({
      response_type: 'code',
      client_id: CLIENT.client_id,
      redirect_uri: `${PUBLIC_URL}/auth/oidc/${PROVIDER}/callback`,
      code_challenge_method: 'S256',
      state: expect.stringMatching(/.{32,}/),
      nonce: expect.stringMatching(/.{32,}/),
      code_challenge: expect.any(String),
    });
    expect(url.searchParams.get('scope')?.split(' ')).toEqual(expect.arrayContaining(['openid', 'email']));
  });

  it('signs a new user in through the provider, then finds them again by their subject', async () => {
    const who = account('oidc.newcomer@example.com');
{% if cookie_sessions %}
    const first = await signIn(who, 303, '?return_to=/journal/today');
    expect(first.headers.location).toBe('/journal/today');
{% else %}
    const first = await signIn(who, 200);
    expect(first.body).toMatchObject({ token_type: 'Bearer', access_token: expect.any(String) });
{% endif %}
    const profile = (await me(first).expect(200)).body;
    expect(profile).toEqual({ id: expect.any(String), email: who.email, role: DEFAULT_ROLE });
    const again = await signIn(who, {{ 303 if cookie_sessions else 200 }});
    expect((await me(again).expect(200)).body.id).toBe(profile.id);
    // An account made by the provider has no password to log in with.
    const [row] = await t.database.db.select().from(users).where(eq(users.id, profile.id));
    expect(row?.password_hash).toBeNull();
    await request(t.app).post('/auth/login').send({ email: who.email, password: PASSWORD }).expect(401);
  });

  it('refuses a wrong state (403) and a state this browser did not start (403)', async () => {
    signingIn = account('oidc.state@example.com');
    const { location, cookie } = await start();
    const back = await atProvider(location);
    const wrong = new URL(back);
    wrong.searchParams.set('state', 'not-the-state-of-this-login-0123456789abcd');
    const res = await callback(wrong, cookie).expect(403);
    expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
    // The right state, but from another browser (no cookie binding it): a forged callback.
    await callback(back).expect(403);
  });

  it('refuses a replayed callback, and a code redeemed under another login (400)', async () => {
    signingIn = account('oidc.replay@example.com');
    const { location, cookie } = await start();
    const back = await atProvider(location);
    await callback(back, cookie).expect({{ 303 if cookie_sessions else 200 }});
    await callback(back, cookie).expect(400);
    // The same code under a fresh login's state: the provider refuses it (used, and another PKCE verifier).
    const fresh = await start();
    const reused = new URL(back);
    reused.searchParams.set('state', new URL(fresh.location).searchParams.get('state')!);
    const res = await callback(reused, fresh.cookie).expect(400);
    expect(res.body.detail).toMatch(/provider refused/);
  });

  it('refuses an ID token whose nonce is not the login’s (400)', async () => {
    signingIn = account('oidc.nonce@example.com');
    const { location, cookie } = await start();
    const state = new URL(location).searchParams.get('state')!;
    const stateHash = createHash('sha256').update(state).digest('hex');
    await t.database.db.update(oidcLogins).set({ nonce: 'another-nonce' }).where(eq(oidcLogins.state_hash, stateHash));
    await callback(await atProvider(location), cookie).expect(400);
  });

  it('links an existing password account only through a verified email', async () => {
    const email = 'oidc.owner@example.com';
    const registered = await request(t.app).post('/auth/register').send({ email, password: PASSWORD }).expect(201);
    // Someone whose provider account claims that email without having proven it gets nothing.
    const claimant = account(email, false);
    const refused = await signIn(claimant, 403);
    expect(refused.body.detail).toMatch(/did not vouch/);
    const claimed = await t.database.db.select().from(userIdentities).where(eq(userIdentities.user_id, registered.body.id));
    expect(claimed).toEqual([]);
    // The owner, with the email verified at the provider, is linked; the password still works too.
    const owner = await signIn(account(email), {{ 303 if cookie_sessions else 200 }});
    expect((await me(owner).expect(200)).body.id).toBe(registered.body.id);
    await request(t.app).post('/auth/login').send({ email, password: PASSWORD }).expect(200);
  });

  it('reports an error the provider sends back as problem+json (400), never a stack', async () => {
    const { location, cookie } = await start();
    const state = new URL(location).searchParams.get('state')!;
    const res = await request(t.app)
      .get(`/auth/oidc/${PROVIDER}/callback?error=access_denied&state=${state}`)
      .set('Cookie', cookie)
      .expect(400);
    expect(res.body.detail).toMatch(/access_denied/);
    expect(JSON.stringify(res.body)).not.toMatch(/at .*\.ts:\d+/);
  });

  it('answers 404 for a provider that is not configured, and 502 when the provider cannot be reached', async () => {
    await request(t.app).get('/auth/oidc/nobody/login').expect(404);
    const down = await setup({
      PUBLIC_URL,
      OIDC_{{ provider.env }}_ISSUER: 'http://127.0.0.1:9',
      OIDC_{{ provider.env }}_CLIENT_ID: CLIENT.client_id,
      OIDC_{{ provider.env }}_CLIENT_SECRET: CLIENT.client_secret,
    });
    try {
      const res = await request(down.app).get(`/auth/oidc/${PROVIDER}/login`).expect(502);
      expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
    } finally {
      await down.close();
    }
  });
{% if cookie_sessions %}

  it('only returns to a path on this site (no open redirect)', async () => {
    for (const target of ['//evil.example/', 'https://evil.example/', '/\\evil.example']) {
      await request(t.app).get(`/auth/oidc/${PROVIDER}/login?return_to=${encodeURIComponent(target)}`).expect(400);
    }
  });
{% endif %}
});
{% endif %}
