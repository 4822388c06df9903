// Example values derived from the spec's constraints (generated; sample i of a unique field is distinct).

export interface Sample {
  bodies: Record<string, unknown>[];
  /** ref field -> the resource it points at */
  refs: Record<string, ResourceName>;
  /** A field and a value of the wrong type for it, when one exists. */
  invalid: [string, unknown] | null;
  required: string[];
  patch_field: string | null;
  patch_value: unknown;
  unique: string[];
  private: string[];
{% if auth %}
  /** Who performs each action in tests (a key of TestContext.users, or null for anonymous). */
  actors: Record<'list' | 'read' | 'create' | 'update' | 'delete', string | null>;
  /** A user whose role is refused each action (403), when the rule is a role list that leaves one out. */
  forbidden: Record<'list' | 'read' | 'create' | 'update' | 'delete', string | null>;
  /** Owned resources: another user with the creator's role, who must not see the creator's rows. */
  stranger: string | null;
{% endif %}
}

export type ResourceName = {{ resources_by_name | map(attribute='name') | map('ts') | join(' | ') }};

export const samples: Record<ResourceName, Sample> = {{ samples_ts }};
