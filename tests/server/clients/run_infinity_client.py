"""The infinity client (infinity_client) against a live rankgate server's /infinity/rerank.

Runs in .venv-clients-infinity (scripts/setup-client-env.sh): infinity-client pins
httpx<0.28, which neither other client environment can hold. Usage: python
run_infinity_client.py BASE_URL API_KEY < spec.json, spec as for run_clients.py. Prints
{"infinity_client": [[document index, score], ...]}, best first.
"""

from __future__ import annotations

import json
import sys


def main() -> None:
    url, key = sys.argv[1], sys.argv[2]
    spec = json.load(sys.stdin)
    from infinity_client import AuthenticatedClient
    from infinity_client.api.default import rerank
    from infinity_client.models import RerankInput

    client = AuthenticatedClient(base_url=f"{url}/infinity", token=key)
    body = RerankInput(query=spec["query"], documents=spec["documents"], top_n=spec["top_n"])
    result = rerank.sync(client=client, body=body)
    assert result is not None and hasattr(result, "results"), result  # parsed, not an error
    assert result.usage.prompt_tokens > 0
    ranking = [[r.index, r.relevance_score] for r in result.results]
    json.dump({"infinity_client": ranking}, sys.stdout)


if __name__ == "__main__":
    main()
