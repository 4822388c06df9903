"""OpenAPI import: resource-shaped paths map, everything else is reported by path with the reason."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from backend_implementor.spec import check_text, load_spec_text
from backend_implementor.spec.openapi import OpenAPIImportError, import_openapi, kebab, render_yaml, snake
from backend_implementor.spec.source import parse_yaml

BAXBENCH = Path("/work/shared/baxbench")

PETSTORE = {
    "openapi": "3.1.0",
    "info": {"title": "Pet Store", "description": "Pets and their owners"},
    "components": {
        "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        "schemas": {
            "NewPet": {
                "type": "object",
                "required": ["name", "species"],
                "properties": {
                    "name": {"type": "string", "maxLength": 80},
                    "species": {"type": "string", "enum": ["cat", "dog"]},
                    "birthDate": {"type": "string", "format": "date"},
                    "weight": {"type": "number", "minimum": 0},
                    "tags": {"type": "array", "items": {"type": "string"}},
                    "order": {"type": "integer"},
                    "chip": {"type": "string", "pattern": "(?P<x>[0-9]+)"},
                    "meta": {"type": "object", "properties": {"a": {"type": "string"}}},
                },
            },
            "Pet": {
                "allOf": [
                    {"$ref": "#/components/schemas/NewPet"},
                    {"type": "object", "properties": {"id": {"type": "string", "format": "uuid"}}},
                ]
            },
        },
    },
    "security": [{"bearer": []}],
    "paths": {
        "/api/v1/pets": {
            "get": {
                "security": [],
                "responses": {
                    "200": {
                        "description": "ok",
                        "content": {
                            "application/json": {
                                "schema": {"type": "array", "items": {"$ref": "#/components/schemas/Pet"}}
                            }
                        },
                    }
                },
            },
            "post": {
                "requestBody": {
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/NewPet"}}}
                },
                "responses": {"201": {"description": "created"}},
            },
        },
        "/api/v1/pets/{petId}": {
            "get": {"security": [], "responses": {"200": {"description": "ok"}}},
            "patch": {"responses": {"200": {"description": "ok"}}},
            "delete": {"responses": {"204": {"description": "gone"}}},
        },
        "/api/v1/pets/{petId}/photos": {"post": {"responses": {"201": {"description": "ok"}}}},
        "/api/v1/pets/search": {"get": {"responses": {"200": {"description": "ok"}}}},
        "/api/v1/login": {"post": {"responses": {"200": {"description": "ok"}}}},
        "/api/v1/reports": {
            "get": {"responses": {"200": {"content": {"text/csv": {"schema": {"type": "string"}}}}}}
        },
        "/api/v1/widgets": {"put": {"responses": {"200": {"description": "ok"}}}},
    },
}


def test_petstore_maps_resource_and_reports_the_rest() -> None:
    result = import_openapi(PETSTORE)
    spec = result.spec
    assert spec["name"] == "pet-store"
    assert spec["auth"] == {"roles": ["user"]}
    pets = spec["resources"]["pets"]
    assert pets["fields"] == {
        "name": {"type": "string", "max_length": 80, "required": True},
        "species": {"type": "enum", "values": ["cat", "dog"], "required": True},
        "birth_date": {"type": "date"},
        "weight": {"type": "number", "min": 0},
        "tags": {"type": "array", "items": "string"},
        "order_value": {"type": "integer"},
        "chip": {"type": "string"},
        "meta": {"type": "json"},
    }
    assert pets["access"] == {
        "list": "public",
        "create": "authenticated",
        "read": "public",
        "update": "authenticated",
        "delete": "authenticated",
    }
    skipped = {e.path: e.message for e in result.skipped}
    assert skipped == {
        "/api/v1/pets/{petId}/photos": "nested path under /pets/{petId}, not resource-shaped "
        "(model 'photos' as its own resource with a ref to 'pets')",
        "/api/v1/pets/search": "action path, not resource-shaped",
        "/api/v1/login": "authentication endpoint: not mapped; the generated backend has its own "
        "/auth/register, /auth/login, /auth/refresh, /auth/logout and /auth/me (added an `auth` block)",
        "/api/v1/reports": "resource 'reports' skipped: responses are text/csv, not JSON",
        "/api/v1/widgets": "PUT on a collection path is not a resource operation",
    }
    notes = [e.message for e in result.entries if e.mapped and e.message.startswith("note:")]
    assert "note: property 'order' renamed to 'order_value' (order is a reserved word)" in notes
    assert "note: field 'chip': pattern dropped (not portable between Python and JavaScript)" in notes
    # the rendered YAML is a valid spec and carries the report as comments
    text = render_yaml(result, "petstore.yaml")
    assert "# SKIPPED /api/v1/pets/search: action path, not resource-shaped" in text
    loaded = load_spec_text(text)
    assert list(loaded.resources["pets"].fields)[:3] == ["name", "species", "birth_date"]


def test_users_collection_is_not_mapped_when_auth_is_on() -> None:
    doc = {
        "openapi": "3.0.0",
        "info": {"title": "U"},
        "paths": {
            "/register": {"post": {}},
            "/users": {
                "post": {
                    "requestBody": {
                        "content": {
                            "application/json": {
                                "schema": {"type": "object", "properties": {"nick": {"type": "string"}}}
                            }
                        }
                    }
                }
            },
        },
    }
    result = import_openapi(doc)
    assert result.spec["resources"] == {}
    assert {e.path: e.message for e in result.skipped}["/users"] == (
        "'users' is reserved when auth is on: the generated backend's built-in /users replaces it"
    )


def test_invalid_defaults_are_dropped_and_reported() -> None:
    schema = {"type": "object", "properties": {"n": {"type": "integer", "minimum": 5, "maximum": 1}}}
    doc = {
        "openapi": "3.0.0",
        "info": {"title": "T"},
        "paths": {
            "/things": {"post": {"requestBody": {"content": {"application/json": {"schema": schema}}}}}
        },
    }
    result = import_openapi(doc)
    assert "things" not in result.spec["resources"]
    messages = [str(e) for e in result.entries]
    assert "resources.things: note: field 'n' dropped: min (5) is greater than max (1)" in messages
    assert "resources.things: resource dropped: no fields left" in messages


@pytest.mark.parametrize(
    "doc,message",
    [
        ([], "not an OpenAPI document (expected a mapping at the top level)"),
        ({"swagger": "2.0"}, "Swagger 2.0 is not supported; convert it to OpenAPI 3.x first"),
        ({"openapi": 3}, "not an OpenAPI 3.x document (no `openapi: 3.x` key)"),
    ],
)
def test_not_openapi(doc: object, message: str) -> None:
    with pytest.raises(
        OpenAPIImportError, match=message.replace("(", r"\(").replace(")", r"\)").replace(".", r"\.")
    ):
        import_openapi(doc)


def test_cyclic_and_remote_refs_do_not_crash() -> None:
    doc = {
        "openapi": "3.0.0",
        "info": {"title": "C"},
        "components": {
            "schemas": {"A": {"$ref": "#/components/schemas/B"}, "B": {"$ref": "#/components/schemas/A"}}
        },
        "paths": {
            "/as": {
                "post": {
                    "requestBody": {
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/A"}}}
                    }
                }
            },
            "/bs": {
                "post": {
                    "requestBody": {"content": {"application/json": {"schema": {"$ref": "other.yaml#/X"}}}}
                }
            },
        },
    }
    result = import_openapi(doc)
    assert result.spec["resources"] == {}
    assert {e.path for e in result.skipped} == {"/as", "/bs"}


@pytest.mark.parametrize("name", ["Login", "Recipes", "SecretStorage", "ShoppingCartService", "UserCreation"])
def test_baxbench_specs_import_honestly(name: str) -> None:
    path = BAXBENCH / f"{name}.yaml"
    if not path.exists():
        pytest.skip("baxbench scenarios not available")
    doc, _, issues = parse_yaml(path.read_text(), str(path))
    assert issues == []
    result = import_openapi(doc)
    rendered = render_yaml(result, path.name)
    spec, problems = check_text(rendered, "import.yaml")
    assert problems == [] and spec is not None
    # every document path appears in the report; none of these scenarios is resource-shaped
    assert {e.path for e in result.entries} == set(doc["paths"])
    assert spec.resources == {}
    for entry in result.skipped:
        assert f"# SKIPPED {entry.path}: {entry.message}" in rendered


def test_baxbench_reasons() -> None:
    if not BAXBENCH.exists():
        pytest.skip("baxbench scenarios not available")

    def reasons(name: str) -> dict[str, str]:
        doc = yaml.safe_load((BAXBENCH / f"{name}.yaml").read_text())
        return {e.path: e.message for e in import_openapi(doc).skipped}

    recipes = reasons("Recipes")
    assert recipes["/recipes/upload"] == "action path, not resource-shaped"
    assert recipes["/recipes"] == "resource 'recipes' skipped: responses are text/html, not JSON"
    assert recipes["/recipes/{recipeId}/ratings"].startswith("nested path under /recipes/{recipeId}")
    cart = reasons("ShoppingCartService")
    assert cart["/add_to_cart"] == "action path ('add…' names an operation), not resource-shaped"
    assert reasons("Login")["/login"].startswith("authentication endpoint")


@pytest.mark.parametrize(
    "raw,expected",
    [
        ("avgRating", "avg_rating"),
        ("line-items", "line_items"),
        ("HTTPStatus", "http_status"),
        ("2fa", "f_2fa"),
    ],
)
def test_snake(raw: str, expected: str) -> None:
    assert snake(raw) == expected


def test_kebab() -> None:
    assert kebab("Recipe Sharing App API") == "recipe-sharing-app-api"
    assert kebab("LoginAPI") == "login-api"
    assert kebab("") == "imported-api"
