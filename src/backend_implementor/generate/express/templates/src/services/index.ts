import type { Db } from '../db/client.js';
{% for r in resources_by_name %}
import { {{ r.type_name }}Service } from './{{ r.name }}.js';
{% endfor %}

/** One service per resource, shared by every interface that serves it (REST{{ ' and GraphQL' if graphql else '' }}). */
export function createServices(db: Db) {
  return {
{% for r in resources %}
    {{ r.var }}: new {{ r.type_name }}Service(db),
{% endfor %}
  };
}

export type Services = ReturnType<typeof createServices>;
