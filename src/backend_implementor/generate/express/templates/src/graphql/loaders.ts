{% if graphql %}
import DataLoader from 'dataloader';

/**
 * One request's DataLoaders, by key (a resource, or a reverse side with its page): every `load` of a key made
 * while a level of the query resolves goes to the database as one batch, so a list of 100 books with their
 * authors reads the authors once, not 100 times. Made per request: rows read for one user never serve another.
 */
export class Loaders {
  private readonly byKey = new Map<string, DataLoader<string, unknown>>();

  get<T>(key: string, batch: (ids: readonly string[]) => Promise<T[]>): DataLoader<string, T> {
    let loader = this.byKey.get(key);
    if (!loader) {
      loader = new DataLoader<string, unknown>(batch);
      this.byKey.set(key, loader);
    }
    return loader as DataLoader<string, T>;
  }
}
{% endif %}
