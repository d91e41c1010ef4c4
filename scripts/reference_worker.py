"""One process for many reference calls: the test suite's FlagEmbedding environment, started once.

Run under the reference env (scripts/setup-flag-env.sh); tests/reference.py starts it. Each
line on stdin is a JSON request ``{"script": "flag_reference.py", "argv": [...], "request":
{...}}``; the named script of this folder runs in this process with the request as its stdin,
and one JSON line comes back: ``{"rc": int, "stdout": str, "error": str | null}``. FlagEmbedding,
transformers and torch are imported once, instead of once per call (several seconds each).

Only the replies go to stdout; logs and progress bars go to stderr.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import sys
import traceback
from pathlib import Path
from types import ModuleType

HERE = Path(__file__).resolve().parent
_modules: dict[str, ModuleType] = {}


def _script(name: str) -> ModuleType:
    if name not in _modules:
        path = HERE / name
        if path.parent != HERE or not path.is_file():
            raise ValueError(f"no script {name!r} in {HERE}")
        spec = importlib.util.spec_from_file_location(path.stem, path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        _modules[name] = module
    return _modules[name]


def _call(message: dict) -> dict:
    module = _script(str(message["script"]))
    argv = [str(a) for a in message.get("argv", [])]
    out = io.StringIO()
    old_stdin = sys.stdin
    sys.stdin = io.StringIO(json.dumps(message["request"]))
    try:
        with contextlib.redirect_stdout(out):
            params = module.main.__code__.co_argcount
            rc = module.main(argv) if params else module.main()
    finally:
        sys.stdin = old_stdin
    return {"rc": int(rc or 0), "stdout": out.getvalue(), "error": None}


def main() -> int:
    replies = sys.stdout
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            reply = _call(json.loads(line))
        except Exception:  # a failed call is the caller's to report; the worker serves on
            reply = {"rc": 1, "stdout": "", "error": traceback.format_exc()[-4000:]}
        replies.write(json.dumps(reply) + "\n")
        replies.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
