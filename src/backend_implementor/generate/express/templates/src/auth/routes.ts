{% if auth %}
import { Router } from 'express';
import { rateLimit } from 'express-rate-limit';
import { HttpError, notFound } from '../errors.js';
import { authorize, currentUser } from '../middleware/authorize.js';
import { onlyMethods, requireJson } from '../middleware/errors.js';
import { validate } from '../middleware/validate.js';
import { idParam } from '../services/common.js';
import { Credentials, {% if oidc %}OidcLoginQuery, {% endif %}PasswordChange{% if bearer_sessions %}, RefreshRequest{% endif %} } from '../schemas.js';
import type { Db } from '../db/client.js';
{% if cookie_sessions %}
import { checkOrigin, type SecretCookie } from './cookies.js';
{% elif oidc %}
import type { SecretCookie } from './cookies.js';
{% endif %}
{% if oidc %}
import { LOGIN_WINDOW_SECONDS, type OidcLogins } from './oidc.js';
{% endif %}
import { DatabaseStore } from './rate-limit-store.js';
import type { AuthService } from './service.js';

export interface AuthRouterOptions {
  rateLimit: number;
{% if cookie_sessions %}
  cookie: SecretCookie;
  /** Browser origins besides this site's own that may log in (CORS_ORIGINS). */
  origins: readonly string[];
{% endif %}
{% if oidc %}
  oidc: OidcLogins;
  /** Binds an OpenID login's state to the browser that started it. */
  oidcState: SecretCookie;
{% endif %}
}

export function authRouter(auth: AuthService, db: Db, options: AuthRouterOptions): Router {
  const router = Router();
  // Credential and token endpoints are the brute-force targets, so they share one per-IP budget, counted in
  // the database so that it holds across instances.
  const limiter = rateLimit({
    windowMs: 60_000,
    limit: options.rateLimit,
    store: new DatabaseStore(db),
    standardHeaders: 'draft-8',
    legacyHeaders: false,
    handler: () => {
      throw new HttpError(429, 'Too many attempts; try again in a minute.');
    },
  });
  const signedIn = authorize('authenticated');

  router.post('/register', requireJson, limiter, async (req, res) => {
    const body = validate(Credentials, req.body, 'body');
    const user = await auth.register(body.email, body.password);
    res.status(201).location('/auth/me').json(user);
  });
{% if bearer_sessions %}

  router.post('/login', requireJson, limiter, async (req, res) => {
    const body = validate(Credentials, req.body, 'body');
    res.json(await auth.login(body.email, body.password, req.get('user-agent')));
  });

  router.post('/refresh', requireJson, limiter, async (req, res) => {
    const body = validate(RefreshRequest, req.body, 'body');
    res.json(await auth.refresh(body.refresh_token, req.get('user-agent')));
  });

  router.post('/logout', requireJson, async (req, res) => {
    const body = validate(RefreshRequest, req.body, 'body');
    await auth.logout(body.refresh_token);
    res.status(204).end();
  });
{% else %}

  router.post('/login', requireJson, limiter, async (req, res) => {
    // A login posted from another site's page would sign the visitor in to the attacker's account.
    checkOrigin(req, options.origins, false);
    const body = validate(Credentials, req.body, 'body');
    const login = await auth.login(body.email, body.password, req.get('user-agent'), options.cookie.read(req));
    options.cookie.set(res, login.secret, login.expiresAt);
    res.json(login.user);
  });

  router.post('/logout', signedIn, async (req, res) => {
    await auth.logout(currentUser(req));
    options.cookie.clear(res);
    res.status(204).end();
  });
{% endif %}
{% if oidc %}

  // OpenID Connect: the browser is sent to the provider with a state bound to it by a cookie, and comes back
  // to the callback, which checks that state before the code is redeemed.
  router.get('/oidc/:provider/login', limiter, async (req, res) => {
{% if cookie_sessions %}
    const query = validate(OidcLoginQuery, req.query, 'query');
    const login = await options.oidc.start(String(req.params.provider), query.return_to);
{% else %}
    validate(OidcLoginQuery, req.query, 'query'); // no parameters but known ones
    const login = await options.oidc.start(String(req.params.provider), undefined);
{% endif %}
    options.oidcState.set(res, login.state, new Date(Date.now() + LOGIN_WINDOW_SECONDS * 1000));
    res.redirect(302, login.url);
  });

  router.get('/oidc/:provider/callback', limiter, async (req, res) => {
    const provider = String(req.params.provider);
    const query = new URLSearchParams(req.originalUrl.split('?')[1] ?? '');
    const bound = options.oidcState.read(req);
    options.oidcState.clear(res);
    const { claims{{ ', returnTo' if cookie_sessions }} } = await options.oidc.finish(provider, query, bound);
    const user = await auth.oidcUser(provider, claims);
{% if cookie_sessions %}
    const login = await auth.signIn(user, req.get('user-agent'), options.cookie.read(req));
    options.cookie.set(res, login.secret, login.expiresAt);
    res.redirect(303, returnTo ?? '/');
{% else %}
    res.json(await auth.signIn(user, req.get('user-agent')));
{% endif %}
  });
{% endif %}

  router.get('/me', signedIn, async (req, res) => {
    res.json(await auth.me(currentUser(req).id));
  });

  router.post('/password', requireJson, signedIn, limiter, async (req, res) => {
    const body = validate(PasswordChange, req.body, 'body');
    await auth.changePassword(currentUser(req), body.current_password, body.new_password);
    res.status(204).end();
  });

  router.get('/sessions', signedIn, async (req, res) => {
    res.json({ items: await auth.sessions.list(currentUser(req)) });
  });

  // Log out everywhere, this session included.
  router.delete('/sessions', signedIn, async (req, res) => {
    await auth.sessions.endAll(currentUser(req).id);
{% if cookie_sessions %}
    options.cookie.clear(res);
{% endif %}
    res.status(204).end();
  });

  router.delete('/sessions/:id', signedIn, async (req, res) => {
    const user = currentUser(req);
    const id = idParam(req.params.id);
    if (!(await auth.sessions.end(user.id, id))) throw notFound('You have no such session.');
{% if cookie_sessions %}
    if (id === user.sessionId) options.cookie.clear(res);
{% endif %}
    res.status(204).end();
  });

  router.all(['/register', '/login', {% if bearer_sessions %}'/refresh', {% endif %}'/logout', '/password'], onlyMethods('POST'));
  router.all('/me', onlyMethods('GET'));
{% if oidc %}
  router.all(['/oidc/:provider/login', '/oidc/:provider/callback'], onlyMethods('GET'));
{% endif %}
  router.all('/sessions', onlyMethods('GET, DELETE'));
  router.all('/sessions/:id', onlyMethods('DELETE'));
  return router;
}
{% endif %}
