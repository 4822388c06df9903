"""Bad specs: each case asserts the exact `line: path: message` the author will read."""

from __future__ import annotations

import pytest

from backend_implementor.spec import SpecError, check_text, load_spec_text

# Lines 1-8; resources appended below start at line 9.
BASE = """\
name: lib
auth:
  roles: [member, librarian]
  admin_role: librarian
resources:
  authors:
    fields:
      name: {type: string, required: true}
"""
NO_AUTH = """\
name: lib
resources:
  things:
    fields: {a: {type: string}}
"""


def errors(text: str) -> list[str]:
    spec, issues = check_text(text, "t.yaml")
    assert spec is None, "expected the spec to be rejected"
    assert all(i.file == "t.yaml" for i in issues)
    return [f"{i.line}: {i.path}: {i.message}" if i.path else f"{i.line}: {i.message}" for i in issues]


CASES = {
    # --- references, ownership, roles, auth
    "unknown ref": (
        BASE + "  books:\n    fields:\n      author: {type: ref, to: autors}\n",
        "11: resources.books.fields.author.to: no resource named 'autors' (did you mean 'authors'?)",
    ),
    "ref to built-in users": (
        BASE + "      who: {type: ref, to: users}\n",
        "9: resources.authors.fields.who.to: no resource named 'users' "
        "(users are built in and cannot be referenced; use an owned resource)",
    ),
    "owner on unowned": (
        BASE + "    access: {read: owner}\n",
        "9: resources.authors.access.read: 'owner' access needs `owned: true` on this resource",
    ),
    "owner create": (
        BASE + "  loans:\n    owned: true\n    fields: {a: {type: string}}\n    access: {create: owner}\n",
        "12: resources.loans.access.create: create cannot be 'owner' (the row does not exist yet); "
        "use authenticated or roles",
    ),
    "unknown role": (
        BASE + "    access: {create: [librarain]}\n",
        "9: resources.authors.access.create[0]: no role named 'librarain' in auth.roles (did you mean 'librarian'?)",
    ),
    "duplicate role in access": (
        BASE + "    access:\n      delete:\n        - librarian\n        - librarian\n",
        "12: resources.authors.access.delete[1]: role 'librarian' is listed twice",
    ),
    "admin_role not a role": (
        BASE.replace("admin_role: librarian", "admin_role: librarians"),
        "4: auth.admin_role: 'librarians' is not in auth.roles (did you mean 'librarian'?)",
    ),
    "duplicate role": (
        BASE.replace("[member, librarian]", "\n    - member\n    - member\n    - librarian"),
        "5: auth.roles[1]: duplicate role 'member'",
    ),
    "access ttl not shorter": (
        BASE.replace("  admin_role: librarian\n", "  access_ttl: 7d\n  refresh_ttl: 1h\n"),
        "4: auth.access_ttl: must be shorter than refresh_ttl (604800s >= 3600s)",
    ),
    "zero ttl": (
        BASE.replace("  admin_role: librarian\n", "  access_ttl: 0s\n"),
        "4: auth.access_ttl: must be longer than 0 seconds",
    ),
    "bad duration": (
        BASE.replace("  admin_role: librarian\n", "  refresh_ttl: 7 days\n"),
        "4: auth.refresh_ttl: '7 days' is not a duration (use e.g. 30s, 15m, 12h, 7d, 2w or 1h30m)",
    ),
    "role access without auth": (
        NO_AUTH + "    access: {create: [admin]}\n",
        "5: resources.things.access.create: role access needs an `auth` block "
        "(without auth every action must be public)",
    ),
    "authenticated without auth": (
        NO_AUTH + "    access:\n      list: public\n      delete: authenticated\n",
        "7: resources.things.access.delete: authenticated access needs an `auth` block "
        "(without auth every action must be public)",
    ),
    "owned without auth": (
        NO_AUTH.replace("    fields:", "    owned: true\n    fields:"),
        "4: resources.things.owned: an owned resource needs an `auth` block (owner_id comes from the token)",
    ),
    # --- filters and sort
    "unknown filter": (
        BASE + "    filters: [nme]\n",
        "9: resources.authors.filters[0]: no field named 'nme' (did you mean 'name'?)",
    ),
    "filter on created_at": (
        BASE + "    filters: [created_at]\n",
        "9: resources.authors.filters[0]: no field named 'created_at' (fields: name)",
    ),
    "unknown sort": (
        BASE + "    sort:\n      - created_at\n      - updatedat\n",
        "11: resources.authors.sort[1]: no field named 'updatedat' (did you mean 'updated_at'?)",
    ),
    "filter on json": (
        BASE + "      meta: {type: json}\n    filters: [meta]\n",
        "10: resources.authors.filters[0]: cannot filter on a json field",
    ),
    "sort on private": (
        BASE + "      secret: {type: string, private: true}\n    sort: [secret]\n",
        "10: resources.authors.sort[0]: cannot sort on a private field",
    ),
    "filter on an always-null field": (
        BASE + "      stamp: {type: string, readonly: true}\n    filters: [stamp]\n",
        "10: resources.authors.filters[0]: cannot filter on 'stamp': readonly without a default, it is always null",
    ),
    "duplicate filter": (
        BASE + "    filters: [name, name]\n",
        "9: resources.authors.filters[1]: 'name' is listed twice",
    ),
    # --- names
    "reserved field id": (
        BASE + "      id: {type: uuid}\n",
        "9: resources.authors.fields.id: field name 'id' is reserved: every resource gets an `id` (uuid) automatically",
    ),
    "reserved field owner_id": (
        BASE + "      owner_id: {type: uuid}\n",
        "9: resources.authors.fields.owner_id: field name 'owner_id' is reserved: "
        "`owner_id` is added by `owned: true` and set from the token",
    ),
    "users with auth": (
        BASE + "  users:\n    fields: {nick: {type: string}}\n",
        "9: resources.users: resource name 'users' is reserved: /users and the users table are built in "
        "when `auth` is set",
    ),
    "auth resource": (
        NO_AUTH + "  auth:\n    fields: {a: {type: string}}\n",
        "5: resources.auth: resource name 'auth' is reserved: /auth is the authentication API",
    ),
    "sql reserved resource": (
        BASE + "  order:\n    fields: {a: {type: string}}\n",
        "9: resources.order: resource name 'order' is a reserved word in SQL; choose another name",
    ),
    "ts reserved field": (
        BASE + "      class: {type: string}\n",
        "9: resources.authors.fields.class: field name 'class' is a reserved word in TypeScript; "
        "choose another name",
    ),
    "prototype field": (
        BASE + "      constructor: {type: string}\n",
        "9: resources.authors.fields.constructor: field name 'constructor' is a reserved word in TypeScript; "
        "choose another name",
    ),
    "yaml 1.1 boolean key stays a name": (
        BASE + "      on: {type: string}\n",
        "9: resources.authors.fields.on: field name 'on' is a reserved word in SQL; choose another name",
    ),
    "project name not kebab": (
        BASE.replace("name: lib", "name: My_Lib"),
        "1: name: 'My_Lib' is not a kebab-case name (lowercase letters, digits and single hyphens, e.g. my-api)",
    ),
    "resource not snake_case": (
        BASE + "  BookItems:\n    fields: {a: {type: string}}\n",
        "9: resources.BookItems: 'BookItems' is not snake_case (lowercase letters, digits and single "
        "underscores, starting with a letter) (try 'book_items')",
    ),
    "role not snake_case": (
        BASE.replace("[member, librarian]", "[member, Librarian]"),
        "3: auth.roles[1]: 'Librarian' is not snake_case (lowercase letters, digits and single underscores, "
        "starting with a letter) (try 'librarian')",
    ),
    "field name too long": (
        BASE + "      " + "a" * 64 + ": {type: string}\n",
        f"9: resources.authors.fields.{'a' * 64}: '{'a' * 64}' is longer than 63 characters",
    ),
    # --- field types and constraints
    "enum without values": (
        BASE + "      kind: {type: enum}\n",
        "9: resources.authors.fields.kind: an enum field needs `values` (the allowed strings)",
    ),
    "duplicate enum value": (
        BASE + "      kind: {type: enum, values: [a, b, a]}\n",
        "9: resources.authors.fields.kind.values[2]: duplicate value 'a'",
    ),
    "ref without to": (
        BASE + "      x: {type: ref}\n",
        "9: resources.authors.fields.x: a ref needs `to` (the referenced resource)",
    ),
    "set_null on required ref": (
        BASE + "      x: {type: ref, to: authors, required: true, on_delete: set_null}\n",
        "9: resources.authors.fields.x.on_delete: set_null needs a non-required ref "
        "(a required ref cannot become null)",
    ),
    "bad on_delete": (
        BASE + "      x: {type: ref, to: authors, on_delete: cascde}\n",
        "9: resources.authors.fields.x.on_delete: 'cascde' is not one of: restrict, cascade, set_null "
        "(did you mean 'cascade'?)",
    ),
    "on_delete on a string": (
        BASE + "      x:\n        type: string\n        on_delete: cascade\n",
        "11: resources.authors.fields.x.on_delete: 'on_delete' does not apply to type string (only to ref)",
    ),
    "min greater than max": (
        BASE + "      n: {type: integer, min: 5, max: 1}\n",
        "9: resources.authors.fields.n.min: min (5) is greater than max (1)",
    ),
    "fractional integer bound": (
        BASE + "      n: {type: integer, max: 1.5}\n",
        "9: resources.authors.fields.n.max: an integer field needs a whole-number max, got 1.5",
    ),
    "integer bound out of range": (
        BASE + "      n: {type: integer, max: 3000000000}\n",
        "9: resources.authors.fields.n.max: 3000000000 is outside the 32-bit integer range (use type number or decimal)",
    ),
    "integer default out of range": (
        BASE + "      n: {type: integer, default: -2147483649}\n",
        "9: resources.authors.fields.n.default: -2147483649 is outside the 32-bit integer range",
    ),
    "min_length greater than max_length": (
        BASE + "      s: {type: string, min_length: 9, max_length: 3}\n",
        "9: resources.authors.fields.s.min_length: min_length (9) is greater than max_length (3)",
    ),
    "negative max_length": (
        BASE + "      s: {type: string, max_length: -1}\n",
        "9: resources.authors.fields.s.max_length: -1 is less than the minimum of 0",
    ),
    "min on a string": (
        BASE + "      q: {type: string, min: 3}\n",
        "9: resources.authors.fields.q.min: 'min' does not apply to type string (only to decimal, integer, number)",
    ),
    "scale above precision": (
        BASE + "      p: {type: decimal, precision: 4, scale: 6}\n",
        "9: resources.authors.fields.p.scale: scale (6) cannot exceed precision (4)",
    ),
    "array without items": (
        BASE + "      tags: {type: array}\n",
        "9: resources.authors.fields.tags: an array needs `items` (the type of its elements)",
    ),
    "array of ref": (
        BASE + "      tags: {type: array, items: ref}\n",
        "9: resources.authors.fields.tags.items: 'ref' is not one of: string, integer, number, boolean, date, "
        "datetime, uuid, email, url, enum",
    ),
    "unique json": (
        BASE + "      meta: {type: json, unique: true}\n",
        "9: resources.authors.fields.meta.unique: a json field cannot be unique",
    ),
    "public create on an owned resource": (
        BASE + "    owned: true\n    access: {create: public}\n",
        "10: resources.authors.access.create: create cannot be public on an owned resource (owner_id comes "
        "from the token); use authenticated or roles",
    ),
    "unique enum": (
        BASE + "      kind: {type: enum, values: [a, b], unique: true}\n",
        "9: resources.authors.fields.kind.unique: a unique enum allows only 2 rows, one per value; drop `unique`",
    ),
    "unique boolean": (
        BASE + "      flag: {type: boolean, unique: true}\n",
        "9: resources.authors.fields.flag.unique: a unique boolean allows only 2 rows, one per value; drop `unique`",
    ),
    "readonly unique default": (
        BASE + "      code: {type: string, readonly: true, unique: true, default: x}\n",
        "9: resources.authors.fields.code.unique: a readonly unique field with a default gives every row that "
        "same value, so only one row could exist; drop `unique` or `default`",
    ),
    "readonly required": (
        BASE + "      code: {type: string, readonly: true, required: true}\n",
        "9: resources.authors.fields.code.readonly: a readonly field cannot be required (clients never send it)",
    ),
    "unknown type": (
        BASE + "      x: {type: strng}\n",
        "9: resources.authors.fields.x.type: 'strng' is not one of: string, text, integer, number, decimal, "
        "boolean, date, datetime, uuid, email, url, enum, json, ref, array (did you mean 'string'?)",
    ),
    "missing type": (
        BASE + "      q: {required: true}\n",
        "9: resources.authors.fields.q: missing required key 'type'",
    ),
    "required not a boolean": (
        BASE + "      q: {type: string, required: yes}\n",
        "9: resources.authors.fields.q.required: expected a boolean, got a string",
    ),
    "empty fields": (
        BASE + "  x:\n    fields: {}\n",
        "10: resources.x.fields: must not be empty",
    ),
    # --- patterns
    "pattern does not compile": (
        BASE + "      p: {type: string, pattern: '[a-'}\n",
        "9: resources.authors.fields.p.pattern: not a valid regular expression: "
        "unterminated character set at position 0",
    ),
    "python-only pattern": (
        BASE + "      p: {type: string, pattern: '(?P<x>a)'}\n",
        "9: resources.authors.fields.p.pattern: not a JavaScript-compatible regular expression: "
        "it uses Python-only named groups (?P<name>…); use (?<name>…)",
    ),
    "inline flag pattern": (
        BASE + "      p: {type: string, pattern: '(?i)^abc$'}\n",
        "9: resources.authors.fields.p.pattern: not a JavaScript-compatible regular expression: "
        "it uses inline flags such as (?i), which JavaScript does not support",
    ),
    "python anchor pattern": (
        BASE + "      p: {type: string, pattern: '\\Aabc\\Z'}\n",
        "9: resources.authors.fields.p.pattern: not a JavaScript-compatible regular expression: "
        "it uses \\A, \\Z or \\z anchors; use ^ and $ in JavaScript",
    ),
    # --- defaults
    "integer default not a number": (
        BASE + "      n: {type: integer, default: abc}\n",
        "9: resources.authors.fields.n.default: expected a whole number, got 'abc'",
    ),
    "default below min": (
        BASE + "      n: {type: integer, min: 0, default: -1}\n",
        "9: resources.authors.fields.n.default: -1 is less than min 0",
    ),
    "default not in enum": (
        BASE + "      k: {type: enum, values: [paper, ebook], default: ebok}\n",
        "9: resources.authors.fields.k.default: 'ebok' is not one of the values: paper, ebook (did you mean 'ebook'?)",
    ),
    "invalid date default": (
        BASE + "      d: {type: date, default: 2024-02-30}\n",
        "9: resources.authors.fields.d.default: '2024-02-30' is not a date (YYYY-MM-DD)",
    ),
    "datetime default without zone": (
        BASE + "      d: {type: datetime, default: '2024-02-01T10:00:00'}\n",
        "9: resources.authors.fields.d.default: '2024-02-01T10:00:00' is not an ISO 8601 date-time with a time "
        "zone (e.g. 2024-01-31T12:00:00Z)",
    ),
    "decimal default too precise": (
        BASE + "      price: {type: decimal, default: '12.345'}\n",
        "9: resources.authors.fields.price.default: 12.345 has more than 2 digits after the point (scale)",
    ),
    "decimal default too large": (
        BASE + "      price: {type: decimal, precision: 4, scale: 2, default: 123.5}\n",
        "9: resources.authors.fields.price.default: 123.5 does not fit decimal(4,2)",
    ),
    "boolean default": (
        BASE + "      b: {type: boolean, default: 'no'}\n",
        "9: resources.authors.fields.b.default: expected true or false, got 'no'",
    ),
    "default against pattern": (
        BASE + "      s: {type: string, pattern: '^[0-9]+$', default: abc}\n",
        "9: resources.authors.fields.s.default: 'abc' does not match the pattern",
    ),
    "uuid default": (
        BASE + "      u: {type: uuid, default: not-a-uuid}\n",
        "9: resources.authors.fields.u.default: 'not-a-uuid' is not a UUID",
    ),
    "array default item": (
        BASE + "      t: {type: array, items: integer, default: [1, x]}\n",
        "9: resources.authors.fields.t.default: item 'x': expected a whole number, got 'x'",
    ),
    "ref default": (
        BASE + "      r: {type: ref, to: authors, default: abc}\n",
        "9: resources.authors.fields.r.default: a ref cannot have a default",
    ),
    # --- unknown keys (did you mean) and structure
    "unknown field key": (
        BASE + "      p: {type: string, requird: true}\n",
        "9: resources.authors.fields.p.requird: unknown key 'requird' (did you mean 'required'?)",
    ),
    "unknown top-level key": (
        "resorces: {}\n" + BASE,
        "1: resorces: unknown key 'resorces' (did you mean 'resources'?)",
    ),
    "unknown resource key": (
        BASE + "    acess: {}\n",
        "9: resources.authors.acess: unknown key 'acess' (did you mean 'access'?)",
    ),
    "unknown key with no close match": (
        BASE.replace("  admin_role: librarian\n", "  zzz: 1\n"),
        "4: auth.zzz: unknown key 'zzz' (expected one of: roles, admin_role, access_ttl, refresh_ttl, sessions, session_ttl, oidc, session_idle)",
    ),
    "unknown access level": (
        BASE + "    access: {create: admins}\n",
        "9: resources.authors.access.create: 'admins' is not one of: public, authenticated, owner, "
        "or a list of roles",
    ),
    "access level of wrong type": (
        BASE + "    access: {create: 5}\n",
        "9: resources.authors.access.create: expected a string or a list, got an integer",
    ),
    "auth not a mapping": (
        BASE.replace("auth:\n  roles: [member, librarian]\n  admin_role: librarian\n", "auth: [member]\n"),
        "2: auth: expected a mapping or null, got a list",
    ),
    "empty roles": (
        BASE.replace("[member, librarian]", "[]"),
        "3: auth.roles: must not be empty",
    ),
    "missing name": (
        BASE.replace("name: lib\n", ""),
        "1: missing required key 'name'",
    ),
    "duplicate key": (
        BASE + "      name: {type: text}\n",
        "9: resources.authors.fields.name: duplicate key (first given on line 8)",
    ),
    "non-string key": (
        BASE + "      1: {type: string}\n",
        "9: resources.authors.fields: key '1' must be a string (quote it)",
    ),
    # --- not a spec at all
    "empty file": ("", "1: the file is empty"),
    "comment-only file": ("# nothing\n", "1: the file is empty"),
    "list document": ("- a\n", "1: a spec must be a mapping (name, auth, resources), got list"),
    "scalar document": ("hello\n", "1: a spec must be a mapping (name, auth, resources), got str"),
    "broken yaml": (
        "name: x\nresources: [\n",
        "3: invalid YAML: while parsing a flow node expected the node content, but found '<stream end>'",
    ),
    "tab indentation": (
        "name: x\n\tresources: {}\n",
        "2: invalid YAML: while scanning for the next token found character '\\t' that cannot start any token",
    ),
    "binary tag": ("name: !!binary aGVsbG8=\n", "1: name: unsupported YAML tag 'tag:yaml.org,2002:binary'"),
    "recursive alias": ("a: &a [*a]\n", "1: a[0]: recursive alias"),
    "two documents": (
        "name: a\n---\nname: b\n",
        "2: invalid YAML: expected a single document in the stream but found another document",
    ),
}


@pytest.mark.parametrize("text,expected", list(CASES.values()), ids=list(CASES))
def test_bad_spec_message_and_line(text: str, expected: str) -> None:
    assert errors(text) == [expected]


def test_every_error_is_reported_in_line_order() -> None:
    text = BASE + (
        "      a: {type: ref, to: nope}\n"  # 9
        "      b: {type: enum}\n"  # 10
        "    filters: [zzz]\n"  # 11
        "    access: {update: owner}\n"  # 12
    )
    assert [e.split(":")[0] for e in errors(text)] == ["9", "10", "11", "12"]


def test_alias_bomb_is_refused_quickly() -> None:
    rows = ["a: &a [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]"]
    for prev, cur in zip("abcdefg", "bcdefgh", strict=True):
        rows.append(f"{cur}: &{cur} [" + ", ".join([f"*{prev}"] * 10) + "]")
    (msg,) = errors("\n".join(rows) + "\n")
    assert msg.endswith("document too large (more than 200000 nodes after aliases)")


def test_str_of_spec_error_is_one_issue_per_line() -> None:
    with pytest.raises(SpecError) as info:
        load_spec_text(BASE + "      a: {type: ref, to: autors}\n      b: {type: enum}\n", "lib.yaml")
    assert str(info.value).splitlines() == [
        "lib.yaml:9: resources.authors.fields.a.to: no resource named 'autors' (did you mean 'authors'?)",
        "lib.yaml:10: resources.authors.fields.b: an enum field needs `values` (the allowed strings)",
    ]
    first = info.value.issues[0]
    assert (first.file, first.line, first.column, first.path) == (
        "lib.yaml",
        9,
        26,
        "resources.authors.fields.a.to",
    )
