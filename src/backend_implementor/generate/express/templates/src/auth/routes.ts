{% if auth %}
import { Router } from 'express';
import { rateLimit } from 'express-rate-limit';
import { HttpError } from '../errors.js';
import { authorize, currentUser } from '../middleware/authorize.js';
import { onlyMethods, requireJson } from '../middleware/errors.js';
import { validate } from '../middleware/validate.js';
import { Credentials, RefreshRequest } from '../schemas.js';
import type { Db } from '../db/client.js';
import { DatabaseStore } from './rate-limit-store.js';
import type { AuthService } from './service.js';

export function authRouter(auth: AuthService, db: Db, options: { rateLimit: number }): Router {
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

  router.post('/register', requireJson, limiter, async (req, res) => {
    const body = validate(Credentials, req.body, 'body');
    const user = await auth.register(body.email, body.password);
    res.status(201).location('/auth/me').json(user);
  });

  router.post('/login', requireJson, limiter, async (req, res) => {
    const body = validate(Credentials, req.body, 'body');
    res.json(await auth.login(body.email, body.password));
  });

  router.post('/refresh', requireJson, limiter, async (req, res) => {
    const body = validate(RefreshRequest, req.body, 'body');
    res.json(await auth.refresh(body.refresh_token));
  });

  router.post('/logout', requireJson, async (req, res) => {
    const body = validate(RefreshRequest, req.body, 'body');
    await auth.logout(body.refresh_token);
    res.status(204).end();
  });

  router.get('/me', authorize('authenticated'), async (req, res) => {
    res.json(await auth.me(currentUser(req).id));
  });

  router.all(['/register', '/login', '/refresh', '/logout'], onlyMethods('POST'));
  router.all('/me', onlyMethods('GET'));
  return router;
}
{% endif %}
