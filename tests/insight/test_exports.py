from __future__ import annotations

import subprocess
import sys

import rankgate.insight


def test_all_names_exist_and_are_sorted() -> None:
    for name in rankgate.insight.__all__:
        assert hasattr(rankgate.insight, name), name
    assert rankgate.insight.__all__ == sorted(rankgate.insight.__all__)


def test_import_pulls_in_no_optional_dependency() -> None:
    code = (
        "import sys, rankgate.insight, rankgate.cli.demo_commands; "
        "print(sorted(m for m in ('torch', 'matplotlib', 'fastapi', 'prometheus_client') "
        "if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
