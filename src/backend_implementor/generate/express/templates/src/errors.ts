import { STATUS_CODES } from 'node:http';

export interface FieldError {
  path: string;
  message: string;
}

/** An error that becomes an RFC 9457 problem+json response with this status. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly detail: string,
    readonly errors?: FieldError[],
  ) {
    super(detail);
  }

  get title(): string {
    return STATUS_CODES[this.status] ?? 'Error';
  }
}

export const badRequest = (detail: string, errors?: FieldError[]) => new HttpError(400, detail, errors);
{% if auth %}
export const unauthorized = (detail = 'Missing or invalid access token.') => new HttpError(401, detail);
export const forbidden = (detail = 'Your role may not perform this action.') => new HttpError(403, detail);
{% endif %}
export const notFound = (detail = 'No such resource.') => new HttpError(404, detail);
{% if auth %}
export const conflict = (detail: string) => new HttpError(409, detail);
{% endif %}
