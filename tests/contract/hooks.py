"""schemathesis hooks for atrest (loaded through SCHEMATHESIS_HOOKS=hooks by scripts/test-contract).

- Every request authenticates with HTTP Digest as the bootstrap Organization Owner key.
- v2 requests ask for the resource version whose shape atrest serves (clusters: 2024-08-05; the
  rest: 2023-01-01).
- `envelope=true` is not generated: Atlas then wraps every response in `{"status", "content"}`,
  which no response schema of the official document describes.
- Error `parameters` are strings in Atlas's real answers (and atrest's); the official `ApiError`
  schema says objects, so that one item schema is relaxed.
- `oneOf` becomes `anyOf`: the official provider variants overlap (`{"instanceSize": "M10",
  "nodeCount": 3}` is a valid AWS, Azure and GCP hardware spec) and OpenAPI discriminators, which
  pick one, mean nothing to JSON Schema, so every real cluster would fail `oneOf`. A `type:
  object` next to a `oneOf` of string enums (`regionName`) is dropped for the same reason.
"""

import os

import schemathesis
from requests.auth import HTTPDigestAuth

AUTH = HTTPDigestAuth(os.environ["ATREST_PUBLIC_KEY"], os.environ["ATREST_PRIVATE_KEY"])


def _discriminated(node):
    if isinstance(node, dict):
        if "oneOf" in node:
            branches = node.pop("oneOf")
            node["anyOf"] = branches
            if node.get("type") == "object" and all(b.get("type") == "string" for b in branches):
                del node["type"]
        for v in node.values():
            _discriminated(v)
    elif isinstance(node, list):
        for v in node:
            _discriminated(v)


@schemathesis.hook
def before_load_schema(context, raw_schema):
    error = raw_schema.get("components", {}).get("schemas", {}).get("ApiError")
    if error:
        error["properties"]["parameters"]["items"] = {}
    _discriminated(raw_schema)


@schemathesis.hook
def before_call(context, case, kwargs):
    kwargs["auth"] = AUTH
    if case.query and str(case.query.get("envelope")).lower() == "true":
        case.query = {**case.query, "envelope": "false"}
    path = case.operation.path
    if path.startswith("/api/atlas/v2"):
        version = "2024-08-05" if "/clusters" in path else "2023-01-01"
        case.headers = {**(case.headers or {}), "Accept": f"application/vnd.atlas.{version}+json"}
