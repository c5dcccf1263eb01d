"""The OpenAPI document is the contract: schemathesis, driven only by `/v1/openapi.json`, runs every
operation against a live server on loopback, authenticated as a test organization, and checks every
answer: no 5xx, only documented status codes, content types, headers and bodies that match their schemas,
and data that breaks the schema refused with a 4xx."""

import os
import re
import subprocess
import sys

from cobrador.urls import api as ninja_api
from tests.conftest import make_org

CHECKS = ",".join([
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
    "negative_data_rejection",
    "unsupported_method",
])
MAX_EXAMPLES = 2  # per operation and phase: about a minute on SQLite (2 cores)


def test_every_operation_keeps_the_openapi_contract(live_server, transactional_db, tmp_path):
    org = make_org("Fuzzed", mode="test")
    command = [
        sys.executable, "-m", "schemathesis.cli", "run", f"{live_server.url}/v1/openapi.json",
        "--url", live_server.url,
        "--header", f"Authorization: Bearer {org.key}",
        "--checks", CHECKS,
        "--max-examples", str(MAX_EXAMPLES),
        "--phases", os.environ.get("COBRADOR_FUZZ_PHASES", "examples,fuzzing"),
        "--generation-deterministic",  # the same cases on every run
        "--request-timeout", "20",
        "--no-color",
    ]
    env = {**os.environ, "SCHEMATHESIS_HOOKS": ""}
    run = subprocess.run(command, capture_output=True, text=True, timeout=600, env=env, cwd=tmp_path)
    if os.environ.get("COBRADOR_FUZZ_LOG"):
        with open(os.environ["COBRADOR_FUZZ_LOG"], "w") as log:
            log.write(run.stdout + run.stderr)
    assert run.returncode == 0, run.stdout[-20000:] + run.stderr[-5000:]
    operations = sum(len(item) for item in ninja_api.get_openapi_schema()["paths"].values())
    assert re.search(r"Tested: (\d+)", run.stdout).group(1) == str(operations), run.stdout[-3000:]
