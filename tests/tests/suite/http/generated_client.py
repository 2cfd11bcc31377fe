"""Calls bizos through a client that openapi-python-client generated from
GET /api/v1/openapi.json (http::generated_client).

argv: the directory holding the generated package `bizos_client`, the
server's base URL, an API key, and the calls as JSON: a list of
{"tag", "operation_id", "body" (or null)}. Prints one JSON list with each
call's status, JSON body and the type the client parsed it into.
"""

import importlib
import json
import sys
import typing

sys.path.insert(0, sys.argv[1])
base_url, key, calls = sys.argv[2], sys.argv[3], json.loads(sys.argv[4])

from bizos_client import AuthenticatedClient  # noqa: E402

client = AuthenticatedClient(base_url=base_url, token=key)
out = []
for call in calls:
    module = importlib.import_module(
        f"bizos_client.api.{call['tag']}.{call['operation_id']}"
    )
    kwargs = {}
    if call.get("body") is not None:
        body_type = typing.get_type_hints(module.sync_detailed)["body"]
        kwargs["body"] = body_type.from_dict(call["body"])
    response = module.sync_detailed(client=client, **kwargs)
    out.append(
        {
            "status": int(response.status_code),
            "body": json.loads(response.content),
            "parsed": type(response.parsed).__name__,
        }
    )
print(json.dumps(out))
