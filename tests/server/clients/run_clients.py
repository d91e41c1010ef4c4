"""Rerank through real client libraries against a live rankgate server; print what each returns.

Runs in .venv-clients (scripts/setup-client-env.sh), not in the main environment.
Usage: python run_clients.py BASE_URL API_KEY < spec.json, where spec is
{"query": str, "documents": [str], "top_n": int, "model": str (optional: the model every client
names; default each client's own provider names)}. Prints one JSON object: for each client, the
ranking it returned as [[document index, score], ...], best first.
"""

from __future__ import annotations

import json
import sys


def main() -> None:
    url, key = sys.argv[1], sys.argv[2]
    spec = json.load(sys.stdin)
    query, docs, top_n = spec["query"], spec["documents"], spec["top_n"]
    v2_model = spec.get("model", "rerank-v3.5")
    v1_model = spec.get("model", "rerank-english-v3.0")
    position = {d: i for i, d in enumerate(docs)}
    out: dict[str, list[list[float]]] = {}

    import cohere

    v2 = cohere.ClientV2(api_key=key, base_url=url)
    res = v2.rerank(model=v2_model, query=query, documents=docs, top_n=top_n)
    out["cohere_v2"] = [[r.index, r.relevance_score] for r in res.results]

    v1 = cohere.Client(api_key=key, base_url=url)
    res1 = v1.rerank(
        model=v1_model, query=query, documents=docs, top_n=top_n, return_documents=True
    )
    out["cohere_v1"] = [[r.index, r.relevance_score] for r in res1.results]
    assert all(docs[r.index] == r.document.text for r in res1.results)  # type: ignore[union-attr]

    from langchain_cohere import CohereRerank
    from langchain_core.documents import Document

    lc = CohereRerank(cohere_api_key=key, base_url=url, model=v2_model, top_n=top_n)
    out["langchain_cohere"] = [[r["index"], r["relevance_score"]] for r in lc.rerank(docs, query)]
    compressed = lc.compress_documents([Document(page_content=d) for d in docs], query)
    out["langchain_cohere_compress"] = [
        [position[d.page_content], d.metadata["relevance_score"]] for d in compressed
    ]

    from llama_index.core.schema import NodeWithScore, TextNode
    from llama_index.postprocessor.cohere_rerank import CohereRerank as LlamaCohere
    from llama_index.postprocessor.tei_rerank import TextEmbeddingInference

    def nodes() -> list[NodeWithScore]:
        return [NodeWithScore(node=TextNode(text=d), score=0.0) for d in docs]

    llama = LlamaCohere(api_key=key, base_url=url, top_n=top_n, model=v2_model)
    ranked = llama.postprocess_nodes(nodes(), query_str=query)
    out["llama_index_cohere"] = [[position[n.node.get_content()], n.score] for n in ranked]

    tei = TextEmbeddingInference(base_url=url, top_n=top_n, auth_token=f"Bearer {key}")
    ranked = tei.postprocess_nodes(nodes(), query_str=query)
    out["llama_index_tei"] = [[position[n.node.get_content()], n.score] for n in ranked]

    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
