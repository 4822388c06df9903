"""Rendering of `graphql:` specs: the SDL, its names, the packages, and what stays out when it is off."""

from __future__ import annotations

import json

import pytest

from backend_implementor.generate import GenerateError, render_project
from backend_implementor.spec.loader import load_spec, load_spec_text

from .conftest import EXAMPLES, example_path

GRAPHQL_PACKAGES = {"graphql", "graphql-http", "dataloader", "@escape.tech/graphql-armor-max-depth"}


@pytest.fixture(scope="module")
def bookclub():
    return render_project(load_spec(example_path("bookclub")))


def test_sdl_mirrors_the_rest_api_with_private_fields_left_out(bookclub):
    sdl = bookclub["schema.graphql"].decode()
    review = sdl.split("type Review {", 1)[1].split("}", 1)[0]
    assert "rating: Int!" in review and "owner_id: ID!" in review and "book: Book" in review
    assert "moderation_note" not in review, "private fields are not readable"
    assert "moderation_note: String" in sdl.split("input ReviewCreateInput {", 1)[1].split("}", 1)[0]
    assert "owner_id" not in sdl.split("input ReviewCreateInput {", 1)[1].split("}", 1)[0]
    # The list takes the REST filters (typed), the sort, the page and the count mode.
    assert (
        "books(author: ID, genre: BookGenre, sort: String, limit: Int, offset: Int, cursor: String, count: Count)"
        in sdl
    )
    assert "enum BookGenre {\n  fiction\n  non_fiction\n  poetry\n}" in sdl
    # Each reference has its reverse side, paginated.
    assert (
        "books(limit: Int = 20, offset: Int = 0): BookSlice!"
        in sdl.split("type Author {", 1)[1].split("}", 1)[0]
    )
    for op in (
        "create_review(input: ReviewCreateInput!): Review!",
        "update_book(id: ID!, input: BookUpdateInput!)",
        "delete_author(id: ID!): Boolean!",
        "me: User!",
        "review(id: ID!): Review",
    ):
        assert op in sdl, op


def test_graphql_projects_carry_their_packages_and_schema_into_the_image(bookclub):
    deps = json.loads(bookclub["package.json"])["dependencies"]
    assert set(deps) >= GRAPHQL_PACKAGES and deps["graphql"].startswith("^16.")
    assert "COPY --chown=node:node schema.graphql ./" in bookclub["Dockerfile"].decode()
    assert "app.use('/graphql', graphqlRouter(services" in bookclub["src/app.ts"].decode()
    assert "maxDepth: 8," in bookclub["src/graphql/router.ts"].decode()


def test_without_graphql_nothing_of_it_is_rendered():
    files = render_project(load_spec(example_path("library")))
    assert not [p for p in files if "graphql" in p]
    assert not GRAPHQL_PACKAGES & set(json.loads(files["package.json"])["dependencies"])
    lock = json.loads(files["package-lock.json"])["packages"]
    assert not [k for k in lock if k.endswith(("/graphql", "/graphql-http", "/dataloader"))]
    assert (
        b"findMany" not in files["src/services/authors.ts"]
        and b"pagesBy" not in files["src/services/books.ts"]
    )


def _spec(extra: str, resources: str) -> str:
    return f"name: t\n{extra}auth: {{roles: [user]}}\nresources:\n{resources}"


def test_limits_come_from_the_spec():
    spec = load_spec_text(
        _spec(
            "graphql: {max_depth: 5, max_aliases: 3}\n", "  notes:\n    fields:\n      body: {type: text}\n"
        ),
        "t.yaml",
    )
    router = render_project(spec)["src/graphql/router.ts"].decode()
    assert "maxDepth: 5," in router and "maxAliases: 3," in router and "maxCost: 5000," in router


def test_a_resource_named_graphql_is_refused_when_graphql_is_on():
    spec = load_spec_text(
        _spec("graphql: true\n", "  graphql:\n    fields:\n      x: {type: text}\n"), "t.yaml"
    )
    with pytest.raises(GenerateError, match=r"resources\.graphql: the path /graphql is reserved"):
        render_project(spec)


def test_clashing_graphql_names_are_an_error_naming_the_resource():
    # `sheep` is its own singular: its read becomes sheep_by_id; `me` is taken by the signed-in user.
    spec = load_spec_text(
        _spec(
            "graphql: true\n",
            "  sheep:\n    fields:\n      x: {type: text}\n  mes:\n    fields:\n      x: {type: text}\n",
        ),
        "t.yaml",
    )
    with pytest.raises(
        GenerateError, match=r"resources\.mes: its GraphQL field 'me' clashes with that of auth"
    ):
        render_project(spec)


def test_enum_values_that_are_not_graphql_names_are_strings():
    spec = load_spec_text(
        _spec("graphql: true\n", "  tasks:\n    fields:\n      state: {type: enum, values: [to-do, done]}\n"),
        "t.yaml",
    )
    sdl = render_project(spec)["schema.graphql"].decode()
    assert "state: String" in sdl and "enum TaskState" not in sdl


@pytest.mark.parametrize("name", EXAMPLES)
def test_every_example_renders_with_graphql_on(name):
    spec = load_spec(example_path(name)).model_copy(update={"graphql": True})
    files = render_project(spec)
    sdl = files["schema.graphql"].decode()
    for resource in spec.resources:
        assert f"  {resource}(" in sdl.split("type Query {", 1)[1], resource
    assert "import { graphqlRouter }" in files["src/app.ts"].decode()
