# rankgate: `make help` lists the targets.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
MODEL ?= BAAI/bge-reranker-v2-m3
HOST ?= 127.0.0.1
PORT ?= 8080

.DEFAULT_GOAL := help

.PHONY: help
help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-12s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check --upgrade pip
	# torch pinned first: 2.13.0 is the CPU wheel; any other spec may pull a multi-GB CUDA build
	$(BIN)/python -m pip install -q --disable-pip-version-check torch==2.13.0
	$(BIN)/python -m pip install -q --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

.PHONY: setup
setup: $(STAMP) ## Create .venv and install rankgate with every extra

.PHONY: flag-env
flag-env: ## Build .venv-flag, FlagEmbedding's reference environment (transformers 4)
	bash scripts/setup-flag-env.sh

.PHONY: client-env
client-env: ## Build .venv-clients, -more, -infinity: the real clients the server tests drive
	bash scripts/setup-client-env.sh

.PHONY: openapi
openapi: setup ## Regenerate docs/openapi.json from the server
	$(BIN)/python -m rankgate.server.openapi > docs/openapi.json

.PHONY: reference
reference: setup ## Regenerate the generated settings tables of README.md, docs/*.md and benchmarks/README.md
	$(BIN)/python -c "from pathlib import Path; from rankgate.cli.options import update_references; update_references(Path('.'))"

.PHONY: system
system: ## Install Debian packages the tests need (chromium, chromedriver, iproute2, CJK fonts)
	bash scripts/setup-system.sh

TEST_WORKERS ?= 2

.PHONY: test
test: setup flag-env client-env system ## Set up, then run the whole test suite (TEST_WORKERS pytest-xdist workers)
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadgroup

.PHONY: test-fast
test-fast: setup ## The quick tests: none marked slow, no Ray, benchmarks, reference environments, real clients, fuzzing or browser
	$(BIN)/python -m pytest -q -m "not slow and not reference" --ignore=tests/ray \
		--ignore=tests/test_bench.py --ignore=tests/test_reference.py \
		--ignore=tests/server/test_clients.py --ignore=tests/server/test_fuzz.py \
		--ignore=tests/insight/test_playground_browser.py -p no:cacheprovider

.PHONY: lint
lint: setup ## ruff (lint + format check) and mypy
	$(BIN)/ruff check src tests benchmarks scripts
	$(BIN)/ruff format --check src tests benchmarks scripts
	$(BIN)/mypy

.PHONY: run
run: setup ## Set up, then serve the model on HOST:PORT (MODEL=hub id or local directory)
	$(BIN)/rankgate serve --model '$(MODEL)' --host '$(HOST)' --port '$(PORT)'

.PHONY: demo
demo: setup ## Rerank examples/router.jsonl on the command line (MODEL=...)
	$(BIN)/rankgate rerank --model '$(MODEL)' -q "how do I reset the admin password of a Huawei router" examples/router.jsonl

.PHONY: infinity-env
infinity-env: ## Build .venv-infinity: infinity-emb, the peer server of make bench-server
	bash scripts/setup-infinity-env.sh

.PHONY: st-onnx-env
st-onnx-env: ## Build .venv-st-onnx: sentence-transformers on ONNX, the crossencoder-onnx peer
	bash scripts/setup-st-onnx-env.sh

.PHONY: bench
bench: setup flag-env st-onnx-env ## Library benchmark: rankgate (torch/ONNX/int8) vs FlagReranker vs CrossEncoder
	$(BIN)/python benchmarks/bench_core.py

.PHONY: bench-llm
bench-llm: setup flag-env ## LLM rerankers: rankgate vs CrossEncoder vs FlagLLMReranker (Qwen3-Reranker-0.6B shapes)
	$(BIN)/rankgate bench --llm --docs 10,50

.PHONY: bench-server
bench-server: setup infinity-env ## HTTP load benchmark: rankgate serve vs infinity-emb
	$(BIN)/python benchmarks/bench_server.py
