"""A schema-driven fuzz of the public HTTP API (schemathesis 4) from its own OpenAPI document: 0 server errors.

Every operation of /openapi.json (POST /api/chat, /api/rating, /api/session, GET /api/messages, /health) is called
with generated valid and invalid inputs — any strings, sizes, types, missing and extra fields, session ids of any
shape — against the real app (the engine-only assistant of the test index). A response >= 500 fails the test; the
public routes must also answer only with the statuses and media types their OpenAPI document declares.

Two runs: with the suite's generous limits (the handlers are exercised, not the 429s), and a short one with the
production limits (the limits answer as documented). The request and 5xx counts are printed at the end (-s) and,
with VNA_FUZZ_REPORT=<file>, written there as JSON: docs/security.md quotes them with the command.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Iterator

import pytest
import schemathesis
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import content_type_conformance, status_code_conformance

from bot.api import create_app
from bot.config import Settings
from bot.service import Assistant

MAX_EXAMPLES = int(os.environ.get("VNA_FUZZ_EXAMPLES", "60"))  # per operation and generation mode
STRICT_EXAMPLES = 15
OURS = ("/api/chat", "/api/rating", "/api/session", "/health")  # routes whose every answer is documented here

STATS: Counter = Counter()


def shutdown_lifespans() -> None:
    """schemathesis runs an ASGI app's lifespan itself and keeps it until exit; end ours with the module."""
    from schemathesis.python.asgi import shutdown_lifespans as shutdown

    shutdown()


def fuzz_schema(app):  # a FastAPI app; a schemathesis schema
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    schema.config.generation.update(modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE], deterministic=True,
                                    database="none")
    return schema


@pytest.fixture(scope="module")
def api_schema(settings: Settings, assistant: Assistant) -> Iterator[object]:
    schema = fuzz_schema(create_app(settings, assistant))  # the suite's generous limits
    schema.config.generation.update(max_examples=MAX_EXAMPLES)
    yield schema
    shutdown_lifespans()


@pytest.fixture(scope="module")
def strict_api_schema(settings: Settings, assistant: Assistant) -> Iterator[object]:
    production = {name: Settings.model_fields[name].default
                  for name in ("rate_limit_session", "rate_limit_address", "rate_limit_rating")}
    schema = fuzz_schema(create_app(settings.model_copy(update=production), assistant))
    schema.config.generation.update(max_examples=STRICT_EXAMPLES)
    yield schema
    shutdown_lifespans()


def call_and_check(case, run: str) -> None:  # a schemathesis Case
    response = case.call()
    STATS[f"{run}:requests"] += 1
    STATS[f"{run}:{response.status_code // 100}xx"] += 1  # a 5xx is counted, then fails the test with its case
    STATS[f"{run}|{case.operation.label}|{response.status_code}"] += 1
    checks = [not_a_server_error]
    if case.operation.path in OURS:
        checks += [status_code_conformance, content_type_conformance]
    case.validate_response(response, checks=checks)


schema = schemathesis.pytest.from_fixture("api_schema")
strict_schema = schemathesis.pytest.from_fixture("strict_api_schema")


@schema.parametrize()
def test_no_input_makes_the_api_fail(case) -> None:
    call_and_check(case, "generous")


@strict_schema.parametrize()
def test_no_input_makes_the_api_fail_under_production_limits(case) -> None:
    call_and_check(case, "strict")


def test_the_fuzz_ran_and_found_no_server_error() -> None:
    """The summary of the runs above (collected in file order, so it runs after them)."""
    if not STATS:
        pytest.skip("run with the fuzz tests above")
    report = {}
    for run in ("generous", "strict"):
        by_operation: dict[str, dict[str, int]] = {}
        for key, count in sorted(STATS.items()):
            if key.startswith(f"{run}|"):
                _, operation, status = key.split("|")
                by_operation.setdefault(operation, {})[status] = count
        report[run] = {"requests": STATS[f"{run}:requests"], "5xx": STATS[f"{run}:5xx"],
                       "by_class": {c: STATS[f"{run}:{c}"] for c in ("2xx", "4xx", "5xx") if STATS[f"{run}:{c}"]},
                       "by_operation": by_operation}
    print("\nAPI fuzz:", json.dumps(report, ensure_ascii=False))
    if os.environ.get("VNA_FUZZ_REPORT"):
        with open(os.environ["VNA_FUZZ_REPORT"], "w", encoding="utf-8") as f:
            json.dump(report | {"max_examples": MAX_EXAMPLES, "strict_max_examples": STRICT_EXAMPLES}, f, indent=1)
    assert report["generous"]["5xx"] == report["strict"]["5xx"] == 0
    calls = {operation: sum(statuses.values()) for operation, statuses in report["generous"]["by_operation"].items()}
    assert calls["POST /api/chat"] >= MAX_EXAMPLES and calls["POST /api/rating"] >= MAX_EXAMPLES  # really exercised
    chat = report["generous"]["by_operation"]["POST /api/chat"]
    assert chat.get("200", 0) > 0 and chat.get("403", 0) > 0 and chat.get("422", 0) > 0  # answers and refusals
    assert report["strict"]["by_class"].get("4xx", 0) > 0
