"""errors.*: authentication and invalid requests get HTTP errors with OpenAI's error envelope."""

from __future__ import annotations

import pytest

from conformance.api.schemas import schema_errors
from conformance.exchanges.errors import AUTH_CASES, INVALID_CASE_IDS, invalid_cases
from conformance.exchanges.expect import describe_status, expect_rejected
from conformance.transport.client import NOT_JSON
from conformance.verdicts.check import CLEAN_400, check, expect, not_applicable, short
from conformance.verdicts.premises import ERROR_ENVELOPE, REJECTED

PARAMS = {name: case.param for name, case in invalid_cases("m").items()}


def _envelope(exchange) -> dict:
    """The inner error object, or a failed check explaining what came back instead."""
    body = exchange.json
    expect(
        body is not NOT_JSON,
        'a JSON body {"error": {...}}',
        f"not JSON: {short(exchange.body[:200])}",
        exchange,
    )
    error = body.get("error") if isinstance(body, dict) else None
    expect(
        isinstance(error, dict),
        'an envelope {"error": {"message", "type", "param", "code"}}',
        short(body),
        exchange,
    )
    expect(
        isinstance(error.get("message"), str) and error["message"] != "",
        "error.message, a non-empty string",
        short(error),
        exchange,
    )
    expect(isinstance(error.get("type"), str), "error.type, a string", short(error), exchange)
    return error


@check(
    "errors.auth",
    "MUST",
    "A request without a valid API key is rejected with 401 and the error envelope.",
    rationale="a key that is not checked is a security hole, whatever the spec says",
    broken_by={
        "error_as_text": "a JSON body",
        "auth_not_enforced": "expected HTTP 401; got HTTP 200",
        "detail_envelope": "{'detail'",
    },
)
@pytest.mark.parametrize("case", list(AUTH_CASES))
def test_auth(errors, case):
    if case not in errors.auth:
        not_applicable("no API key configured for this run: authentication cannot be tested")
    exchange = errors.auth[case]
    expect(exchange.status == 401, "HTTP 401", describe_status(exchange), exchange)
    _envelope(exchange)


@check(
    "errors.invalid_is_400",
    "MUST",
    "An invalid request is answered 400 Bad Request: never 2xx (silently accepted), never "
    "5xx (crash), not 422.",
    rationale=CLEAN_400,
    broken_by={
        "status_422": "got HTTP 422",
        "error_200": "expected HTTP 400; got HTTP 200",
        "bad_input_500": "got HTTP 500",
        # --- reasoning on / invalid requests (issue 15) ---
        "token_limit_below_one_accepted": {
            "token_limit_zero": "got HTTP 200",
            "token_limit_negative": "got HTTP 200",
        },
        "missing_model_accepted": {"missing_model": "got HTTP 200"},
        "temperature_type_unchecked": {"temperature_string": "got HTTP 200"},
        "messages_string_accepted": {"messages_string": "got HTTP 200"},
        "unknown_response_format_ignored": {"response_format_unknown": "got HTTP 200"},
        "absent_tool_choice_ignored": {"tool_choice_absent_tool": "got HTTP 200"},
        "unknown_roles_dropped": {"bad_role": "got HTTP 200"},
    },
)
@pytest.mark.parametrize("case", INVALID_CASE_IDS)
def test_invalid_is_400(errors, case):
    exchange = errors.invalid[case]
    expect_rejected(exchange)


@check(
    "errors.invalid_envelope",
    "MUST",
    'Errors carry the envelope {"error": {"message": str, "type": str, "param", "code"}}.',
    rationale="SDKs read error.message from the envelope to raise",
    broken_by={
        "error_as_text": "a JSON body",
        "detail_envelope": "got {'detail'",
        "error_200": "an HTTP error status; got HTTP 200",
    },
    needs=(REJECTED,),
)
@pytest.mark.parametrize("case", INVALID_CASE_IDS)
def test_invalid_envelope(errors, case):
    exchange = errors.invalid[case]
    body = exchange.json if isinstance(exchange.json, dict) else {}
    # accepted (a 2xx answer, no error in it): errors.invalid_is_400 fails that, and there is
    # no envelope to judge; an error envelope sent with a 2xx is this check's failure
    REJECTED.require(
        exchange.status is None or exchange.status >= 300 or "error" in body,
        describe_status(exchange),
    )
    expect(
        exchange.status is not None and exchange.status >= 400,
        "an HTTP error status",
        describe_status(exchange),
        exchange,
    )
    _envelope(exchange)


@check(
    "errors.invalid_names_param",
    "SHOULD",
    "error.param names the offending field (e.g. 'temperature', 'messages[0].role').",
    rationale="helps users fix requests; clients do not depend on it",
    needs=(REJECTED, ERROR_ENVELOPE),
    broken_by={"param_null": "; got None"},
)
@pytest.mark.parametrize("case", [c for c in INVALID_CASE_IDS if PARAMS[c]])
def test_invalid_names_param(errors, case):
    exchange = errors.invalid[case]
    if not (exchange.status and exchange.status >= 400):
        REJECTED.unmet(describe_status(exchange))
    body = exchange.json if isinstance(exchange.json, dict) else {}
    error = body.get("error") if isinstance(body.get("error"), dict) else {}
    REJECTED.require(exchange.status < 500, f"{describe_status(exchange)}: a crash")
    ERROR_ENVELOPE.require(error, short(exchange.body[:120]))
    param = error.get("param")
    wanted = invalid_cases("m")[case].param  # the token-limit field is the run's dialect's
    expect(
        isinstance(param, str) and param.startswith(wanted),
        f"param naming {wanted!r}",
        short(param),
        exchange,
    )


@check(
    "errors.envelope_types",
    "SHOULD",
    "Error fields have the spec's types: message and type strings, param and code string or "
    "null (an integer code breaks typed clients).",
    rationale="typed clients reject an integer code, untyped ones cope",
    broken_by={"error_code_integer": "error.code: 400"},
)
def test_envelope_types(errors):
    judged = 0
    for exchange in errors.all():
        body = exchange.json
        if (
            exchange.status
            and exchange.status >= 400
            and isinstance(body, dict)
            and "error" in body
        ):
            judged += 1
            problems = schema_errors(body, "error")
            expect(
                not problems,
                "an error object valid against the spec's Error schema",
                "; ".join(problems),
                exchange,
            )
    if not judged:
        not_applicable("no error response carried an 'error' object to inspect")


@check(
    "errors.are_json",
    "MUST",
    "Error responses are JSON (Content-Type application/json), so clients can parse them.",
    rationale="SDKs decode error bodies as JSON to raise typed errors",
    broken_by={"error_as_text": "got 'text/plain"},
)
def test_are_json(errors):
    judged = 0
    for exchange in errors.all():
        if exchange.status and exchange.status >= 400:
            judged += 1
            expect(
                exchange.content_type == "application/json" and exchange.json is not NOT_JSON,
                "a JSON body with Content-Type application/json",
                f"{exchange.header('content-type')!r}: {short(exchange.body[:120])}",
                exchange,
            )
    if not judged:
        not_applicable("no request got an error status, so no error body to inspect")


@check(
    "errors.unknown_model",
    "SHOULD",
    "A model that does not exist gets 404 (or 400) with the error envelope. Single-model "
    "servers often answer with their one model instead, which hides typos: SHOULD.",
    rationale="single-model servers often serve any name; hides typos only",
    broken_by={
        "error_as_text": "a JSON body",
        "detail_envelope": "got {'detail'",
        "unknown_model_served": "got HTTP 200",
    },
)
def test_unknown_model(errors):
    exchange = errors.unknown_model
    expect(exchange.status in (400, 404), "HTTP 404 (or 400)", describe_status(exchange), exchange)
    _envelope(exchange)


@check(
    "errors.stream_invalid_is_http_error",
    "MUST",
    "An invalid streaming request fails with an HTTP error status before any event, not "
    "with 200 and an error inside the stream.",
    rationale="an error inside a 200 stream is read as output",
    needs=(REJECTED,),
    broken_by={"stream_error_as_event": "got HTTP 200"},
)
def test_stream_invalid_is_http_error(errors):
    exchange = errors.stream_invalid
    if exchange is None:
        REJECTED.unmet("none of the invalid requests without streaming was rejected")
    expect(exchange.status == 400, "HTTP 400 before any event", describe_status(exchange), exchange)
    expect(not exchange.events, "no server-sent events", f"{len(exchange.events)} events", exchange)
