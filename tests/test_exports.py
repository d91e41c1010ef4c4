import rankgate


def test_all_names_exist_and_are_sorted() -> None:
    for name in rankgate.__all__:
        assert hasattr(rankgate, name), name
    public = [n for n in rankgate.__all__ if not n.startswith("__")]
    assert public == sorted(public, key=lambda n: (not n.isupper(), n))


def test_every_error_is_a_rankgate_error() -> None:
    errors = [getattr(rankgate, n) for n in rankgate.__all__ if n.endswith("Error")]
    assert len(errors) >= 15
    for cls in errors:
        assert issubclass(cls, rankgate.RankgateError)


def test_import_does_not_load_torch() -> None:
    import subprocess
    import sys

    code = "import sys, rankgate; print('torch' in sys.modules, 'transformers' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False False"
