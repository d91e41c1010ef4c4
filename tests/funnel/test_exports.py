"""The funnel's public surface is exactly its __all__, and importing it stays light."""

from __future__ import annotations

import subprocess
import sys
import types

import rankgate.funnel


def test_all_names_exist_and_public_names_are_exported():
    for name in rankgate.funnel.__all__:
        assert hasattr(rankgate.funnel, name), name
    public = {
        n
        for n, v in vars(rankgate.funnel).items()
        if not n.startswith("_") and not isinstance(v, types.ModuleType) and n != "annotations"
    }
    assert public == set(rankgate.funnel.__all__)


def test_import_does_not_load_models_or_clients():
    code = (
        "import sys, rankgate.funnel; print(sorted(m for m in ('torch', 'transformers', "
        "'sentence_transformers', 'pymilvus', 'bm25s', 'fastapi', 'matplotlib') "
        "if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_settings_come_from_the_environment(monkeypatch):
    from rankgate.funnel import build_funnel_settings

    monkeypatch.setenv("RANKGATE_RETRIEVE_TOP_K", "7")
    monkeypatch.setenv("RANKGATE_MODEL", "ignored-by-funnel-settings")
    assert build_funnel_settings().retrieve_top_k == 7
    assert build_funnel_settings(retrieve_top_k=9).retrieve_top_k == 9
