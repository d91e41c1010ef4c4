from __future__ import annotations

import pytest

from rankgate.engine.segments import split, split_sentences, split_words


def pieces(text: str, granularity: str = "sentence") -> list[str]:
    return [text[s:e] for s, e in split(text, granularity)]  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "重置密码。长按复位键！然后登录；完成",
            ["重置密码。", "长按复位键！", "然后登录；", "完成"],
        ),
        (
            "リセットします。「完了」しました。次へ",
            ["リセットします。", "「完了」しました。", "次へ"],
        ),
        ("Hold it. Then log in! Done? Yes", ["Hold it. ", "Then log in! ", "Done? ", "Yes"]),
        ("It uses 3.5 kWh. Version v2.1 too.", ["It uses 3.5 kWh. ", "Version v2.1 too."]),
        ("Il roule ? Oui.", ["Il roule ? ", "Oui."]),
        ("Title\nFirst line. Second", ["Title\n", "First line. ", "Second"]),
        ("“他说：好。”然后走了。", ["“他说：好。”", "然后走了。"]),
        ("  leading space. x", ["  leading space. ", "x"]),
    ],
)
def test_sentences_cut_at_cjk_and_latin_ends(text: str, expected: list[str]) -> None:
    assert pieces(text) == expected


@pytest.mark.parametrize(
    "text",
    ["", "one", "a. b. c.", "続航320km，电池加热。Then 24 kWh.\n\nNext", " \n x \n", "？？？"],
)
def test_spans_tile_the_text(text: str) -> None:
    for spans in (split_sentences(text), split_words(text)):
        assert "".join(text[s:e] for s, e in spans) == text
        assert all(s < e for s, e in spans)
        assert all(spans[i][1] == spans[i + 1][0] for i in range(len(spans) - 1))


def test_words_split_cjk_by_character_and_latin_by_space() -> None:
    assert pieces("Model Y 续航，好", "word") == ["Model ", "Y ", "续", "航，", "好"]
    assert pieces("모델 Y는 겨울에", "word") == ["모델 ", "Y는 ", "겨울에"]


def test_unknown_granularity_is_refused() -> None:
    with pytest.raises(ValueError, match="granularity"):
        split("x", "paragraph")  # type: ignore[arg-type]
