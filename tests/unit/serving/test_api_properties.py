"""Property-based API test: schemathesis generates valid and invalid requests for every operation
of `/openapi.json` (positive and negative modes) and sends them to the ASGI app (lifespan run,
real bundle, real FAISS, the write key on every request so write routes run). Each response must
not be a 5xx, must have a documented status and content type, and must match the documented
response schema (422 bodies included).

The default suite draws a bounded number of examples per operation; `-m slow` draws many more.
Run with `-s` to see the counts (requests, by status class, server errors).

The schema is the app's own `/openapi.json` document, loaded at import; the app's bundle directory
is filled by a fixture before the first request (schemathesis runs the app's lifespan, which loads
the bundle, on the first call). schemathesis's fixture-based loader (`from_fixture`) does not run
under pytest 9.
"""

from __future__ import annotations

import shutil
import tempfile
from collections import Counter
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from serving.app import create_app
from tests.unit.serving.conftest import KEY, settings_for

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
COUNTS: Counter = Counter()


ROOT = Path(tempfile.mkdtemp(prefix="recsys-schemathesis-")) / "index"
APP = create_app(settings_for(ROOT, delta_max=50, online_users_max=50, user_seen_max=50, body_max_bytes=64 * 1024))
# the app's own document; requests go to APP. The default suite runs the fuzzing phase (bounded
# examples, valid and invalid); -m slow adds the coverage phase (every boundary and type case the
# schema defines) and many more examples.
schema = schemathesis.openapi.from_dict(APP.openapi())
schema.config.phases.update(phases=["examples", "fuzzing"])
full_schema = schemathesis.openapi.from_dict(APP.openapi())


@pytest.fixture(scope="module", autouse=True)
def bundle_and_report(ivf_bundle):
    shutil.copytree(ivf_bundle, ROOT)
    yield
    shutil.rmtree(ROOT.parent, ignore_errors=True)
    if COUNTS:
        codes = ", ".join(f"{k}: {v}" for k, v in sorted(COUNTS.items()) if k != "requests")
        print(f"\nschemathesis: {COUNTS['requests']} requests ({codes}); server errors {COUNTS['5xx']}, "
              f"schema violations {COUNTS['violations']}")



def _run(case) -> None:
    COUNTS["requests"] += 1
    try:
        response = case.call(app=APP, headers=KEY, timeout=120)  # a forced reload on a busy 2-core box
        COUNTS[f"{response.status_code // 100}xx"] += 1
        case.validate_response(response, checks=CHECKS)
    except Exception:
        COUNTS["violations"] += 1
        raise


@schema.parametrize()
@settings(max_examples=8, deadline=None, derandomize=True, database=None,
          suppress_health_check=list(HealthCheck))
def test_api_keeps_its_contract(case):
    _run(case)


@pytest.mark.slow
@full_schema.parametrize()
@settings(max_examples=150, deadline=None, derandomize=True, database=None,
          suppress_health_check=list(HealthCheck))
def test_api_keeps_its_contract_many_examples(case):
    _run(case)
