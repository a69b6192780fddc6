"""models.*: GET /v1/models lists models in OpenAI's list shape."""

from __future__ import annotations

from conformance.api.schemas import schema_errors
from conformance.exchanges.expect import model_ids, ok_json
from conformance.verdicts.check import check, expect


@check(
    "models.list_schema",
    "MUST",
    'GET /models returns {"object": "list", "data": [{"id", "object": "model", "created", '
    '"owned_by"}]}.',
    rationale=(
        "Spec-optional when --model is given: MUST because clients list models to "
        "pick or validate one, and a malformed list breaks them"
    ),
    broken_by={"models_bare_list": "got JSON list"},
)
def test_list_schema(endpoint):
    exchange = endpoint.models_exchange
    errors = schema_errors(ok_json(exchange), "models")
    expect(not errors, "a valid model list", "; ".join(errors), exchange)


@check(
    "models.lists_model",
    "SHOULD",
    "The model under test is listed by GET /models (clients pick models from the list).",
    rationale="clients that pick from the list miss it; many still work",
    broken_by={"models_bare_list": "got []", "model_not_listed": "got ['chatcompat-ref-other']"},
)
def test_lists_model(endpoint):
    exchange = endpoint.models_exchange
    ids = model_ids(exchange)
    expect(
        endpoint.model in ids, f"{endpoint.model!r} among the listed ids", repr(ids[:20]), exchange
    )
