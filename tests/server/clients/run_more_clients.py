"""More real clients against a live rankgate server: Voyage, Xinference (and Dify's provider),
LiteLLM's rerank providers, AnswerDotAI rerankers' API rankers and Haystack's rankers.

Runs in .venv-clients-more (scripts/setup-client-env.sh); their pins (openai, cohere 7, httpx
0.28) do not fit beside .venv-clients' langchain-cohere. Usage: python run_more_clients.py
BASE_URL API_KEY < spec.json, spec as for run_clients.py. Prints one JSON object: for each
client, the ranking it returned as [[document index, score], ...], best first.
"""

from __future__ import annotations

import json
import os
import sys

# Offline and quiet: LiteLLM would fetch its model price map, Haystack would send telemetry.
os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
os.environ["HAYSTACK_TELEMETRY_ENABLED"] = "False"


def main() -> None:
    url, key = sys.argv[1], sys.argv[2]
    spec = json.load(sys.stdin)
    query, docs, top_n = spec["query"], spec["documents"], spec["top_n"]
    model = spec.get("model", "bge-reranker")
    position = {d: i for i, d in enumerate(docs)}
    out: dict[str, list[list[float]]] = {}

    # voyageai SDK: Client(base_url=.../v1) posts to /v1/rerank and reads data[] and usage.
    import voyageai

    voyage = voyageai.Client(api_key=key, base_url=f"{url}/v1", max_retries=0)
    got = voyage.rerank(query, docs, model=model, top_k=top_n)
    out["voyageai"] = [[r.index, r.relevance_score] for r in got.results]
    assert got.total_tokens > 0
    assert all(r.document == docs[r.index] for r in got.results)

    # xinference-client: GET /v1/cluster/auth (no key), GET /v1/models/{uid}, POST /v1/rerank.
    from xinference_client import RESTfulClient

    handle = RESTfulClient(url, api_key=key).get_model(model)
    reply = handle.rerank(docs, query, top_n=top_n, return_documents=True)
    out["xinference_client"] = [[r["index"], r["relevance_score"]] for r in reply["results"]]
    assert all(r["document"]["text"] == docs[r["index"]] for r in reply["results"])

    # Dify's Xinference rerank provider (langgenius/dify-official-plugins @ 7af22831a58d,
    # models/xinference/models/rerank/rerank.py): _invoke builds the handle itself with its
    # Authorization header and asks for the documents; validate_credentials goes through
    # RESTfulClient(...).get_model(uid) as above.
    from xinference_client.client.restful.restful_client import RESTfulRerankModelHandle

    dify = RESTfulRerankModelHandle(model, url, auth_headers={"Authorization": f"Bearer {key}"})
    reply = dify.rerank(documents=docs, query=query, top_n=top_n, return_documents=True)
    out["dify_xinference"] = [
        [r["index"], r.get("relevance_score", 0.0)] for r in reply["results"] if r["document"]
    ]

    # LiteLLM's rerank providers, each on the path it builds from api_base.
    import litellm

    providers = {
        "litellm_cohere": ("cohere/rerank-v3.5", url),  # /v2/rerank
        "litellm_jina_ai": ("jina_ai/jina-reranker-v2-base-multilingual", url),  # /v1/rerank
        "litellm_infinity": ("infinity/bge-reranker", f"{url}/infinity"),  # /infinity/rerank
        "litellm_hosted_vllm": ("hosted_vllm/bge-reranker", url),  # /rerank
        "litellm_huggingface": ("huggingface/BAAI/bge-reranker-v2-m3", url),  # TEI /rerank
        "litellm_voyage": ("voyage/rerank-2", url),  # /v1/rerank, data[]
    }
    for name, (provider_model, base) in providers.items():
        res = litellm.rerank(
            model=provider_model,
            query=query,
            documents=docs,
            top_n=top_n,
            api_base=base,
            api_key=key,
        )
        out[name] = [[r["index"], r["relevance_score"]] for r in res.results]
        for r in res.results:
            text = (r.get("document") or {}).get("text")
            assert text is None or text == docs[r["index"]], name

    # AnswerDotAI rerankers: API rankers with a full endpoint URL; they ask for every document.
    from rerankers.models.api_rankers import APIRanker

    for name, provider, endpoint in [
        ("rerankers_cohere", "cohere", f"{url}/v1/rerank"),
        ("rerankers_jina", "jina", f"{url}/v1/rerank"),
        ("rerankers_voyage", "voyage", f"{url}/v1/rerank"),
        ("rerankers_tei", "text-embeddings-inference", f"{url}/rerank"),
    ]:
        ranker = APIRanker(model=model, api_key=key, api_provider=provider, url=endpoint)
        ranked = ranker.rank(query, docs)
        out[name] = [[r.document.doc_id, r.score] for r in ranked.results]

    # Haystack 3's rankers.
    from haystack import Document
    from haystack.utils import Secret
    from haystack_integrations.components.rankers.cohere import CohereRanker
    from haystack_integrations.components.rankers.huggingface_api import HuggingFaceTEIRanker
    from haystack_integrations.components.rankers.jina import JinaRanker
    from haystack_integrations.components.rankers.vllm import VLLMRanker

    secret = Secret.from_token(key)
    rankers = {
        "haystack_cohere": CohereRanker(model=model, top_k=top_n, api_key=secret, api_base_url=url),
        "haystack_jina": JinaRanker(
            model=model, api_key=secret, top_k=top_n, base_url=f"{url}/v1/rerank"
        ),
        "haystack_tei": HuggingFaceTEIRanker(url=url, top_k=top_n, token=secret),
        "haystack_vllm": VLLMRanker(
            model=model, api_key=secret, api_base_url=f"{url}/v1", top_k=top_n
        ),
    }
    for name, ranker in rankers.items():
        result = ranker.run(query=query, documents=[Document(content=d) for d in docs])
        out[name] = [[position[d.content], d.score] for d in result["documents"]]

    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
