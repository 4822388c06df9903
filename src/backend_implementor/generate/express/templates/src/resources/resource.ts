{% set R = r.type_name %}
{% macro authorized(action) %}{% if auth %}authorize({{ r.var }}Access.{{ action }}), {% endif %}{% endmacro %}
{% set user = 'req.user, ' if auth else '' %}
import { Router } from 'express';
import { notFound } from '../errors.js';
{% if auth %}
import { authorize } from '../middleware/authorize.js';
{% endif %}
import { onlyMethods, requireJson } from '../middleware/errors.js';
import { validate } from '../middleware/validate.js';
import { {{ R }}Create, {{ R }}ListQuery, {{ R }}Update } from '../schemas.js';
import { idParam } from '../services/common.js';
{% if auth %}
import { type {{ R }}Service, {{ r.var }}Access } from '../services/{{ r.name }}.js';
{% else %}
import type { {{ R }}Service } from '../services/{{ r.name }}.js';
{% endif %}

/** /{{ r.name }} over HTTP: the service holds the rules; this maps them onto methods, status codes and headers. */
export function {{ r.router }}({{ r.var }}: {{ R }}Service): Router {
  const router = Router();

  router.get('/', {{ authorized('list') }}async (req, res) => {
    res.json(await {{ r.var }}.list({{ user }}validate({{ R }}ListQuery, req.query, 'query')));
  });

  router.get('/:id', {{ authorized('read') }}async (req, res) => {
    const row = await {{ r.var }}.find({{ user }}idParam(req.params.id));
    if (!row) throw notFound();
    res.json(row);
  });

  router.post('/', requireJson, {{ authorized('create') }}async (req, res) => {
    const row = await {{ r.var }}.create({{ user }}validate({{ R }}Create, req.body, 'body'));
    res.status(201).location(`/{{ r.name }}/${row.id}`).json(row);
  });

  router.patch('/:id', requireJson, {{ authorized('update') }}async (req, res) => {
    const id = idParam(req.params.id);
    const row = await {{ r.var }}.update({{ user }}id, validate({{ R }}Update, req.body, 'body'));
    if (!row) throw notFound();
    res.json(row);
  });

  router.delete('/:id', {{ authorized('delete') }}async (req, res) => {
    if (!(await {{ r.var }}.remove({{ user }}idParam(req.params.id)))) throw notFound();
    res.status(204).end();
  });

  router.all('/', onlyMethods('GET, POST'));
  router.all('/:id', onlyMethods('GET, PATCH, DELETE'));
  return router;
}
