"""The charts, read off the matplotlib figures: the query in the title, documents named by
their text, colour-blind-safe colours with a second cue, legends clear of the data, a
one-point health chart that shows its point on integer ticks, and CJK text drawn with a font
that has its glyphs."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rankgate.insight.catalog import Scenario, ScenarioDocument, get_scenario
from rankgate.insight.charts import (
    PALETTE,
    demo_chart,
    demo_figure,
    health_figure,
    health_series,
)
from rankgate.insight.demo import DemoRun
from rankgate.insight.health import HealthSettings, Observation

pytest.importorskip("matplotlib")

PNG = b"\x89PNG\r\n\x1a\n"
OKABE_ITO = {c.lower() for c in PALETTE.values()}
CJK_FONTS = {"Noto Sans CJK SC", "Noto Sans CJK JP", "WenQuanYi Zen Hei", "WenQuanYi Micro Hei"}


@pytest.fixture
def figures() -> Iterator[list[Any]]:
    """Figures made during the test, closed after it."""
    import matplotlib.pyplot as plt

    before = set(plt.get_fignums())
    made: list[Any] = []
    yield made
    for fig in made:
        plt.close(fig)
    for num in set(plt.get_fignums()) - before:
        plt.close(num)


def to_hex(colour: Any) -> str:
    from matplotlib.colors import to_hex as hex_of

    return str(hex_of(colour))


def _run(scenario: Scenario) -> DemoRun:
    """A run that ranks in retrieval order: the chart's job is to show it, not to judge it."""
    ids = [d.id for d in scenario.documents]
    scores = {doc_id: 0.9 - 0.3 * n for n, doc_id in enumerate(ids)}
    return DemoRun(scenario, scores, tuple(ids), {})


def _drawn(fig: Any) -> Any:
    fig.canvas.draw()
    return fig.canvas.get_renderer()


def _glyph_warnings(fig: Any) -> list[str]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fig.canvas.draw()
    return [str(w.message) for w in caught if "missing from" in str(w.message)]


def _bars(ax: Any) -> list[Any]:
    from matplotlib.patches import Rectangle

    return [p for p in ax.patches if isinstance(p, Rectangle) and p.get_width() > 0]


def test_demo_chart_names_the_query_and_each_document(figures: list[Any]) -> None:
    s = get_scenario("tesla-winter-range", "en")
    fig = demo_figure(_run(s))
    figures.append(fig)
    ax = fig.axes[0]
    assert s.query in ax.get_title(loc="left")
    labels = [t.get_text() for t in ax.get_yticklabels()]
    for doc, label in zip(s.documents, labels, strict=True):
        assert label.startswith(f"{doc.id}: {doc.text[:12]}"), label
    texts = [t.get_text() for t in ax.texts]
    assert any("expected best" in t for t in texts) and any("expected worst" in t for t in texts)


def test_demo_chart_colours_have_a_second_cue(figures: list[Any]) -> None:
    s = get_scenario("router-password", "en")
    fig = demo_figure(_run(s))
    figures.append(fig)
    bars = _bars(fig.axes[0])
    assert len(bars) == len(s.documents)
    assert {to_hex(b.get_facecolor()) for b in bars} <= OKABE_ITO
    by_id = dict(zip([d.id for d in s.documents], bars, strict=True))
    best, worst = by_id[s.expected_best], by_id[s.expected_worst]
    assert to_hex(best.get_facecolor()) != to_hex(worst.get_facecolor())
    # Told apart without colour too: each role has its own hatching.
    assert best.get_hatch() and worst.get_hatch() and best.get_hatch() != worst.get_hatch()


def test_demo_legend_sits_outside_the_axes(figures: list[Any]) -> None:
    fig = demo_figure(_run(get_scenario("sony-xm5-vs-xm4", "en")))
    figures.append(fig)
    renderer = _drawn(fig)
    ax = fig.axes[0]
    (legend,) = fig.legends
    box = legend.get_window_extent(renderer)
    assert not box.overlaps(ax.get_window_extent(renderer))
    for bar in _bars(ax):
        assert not box.overlaps(bar.get_window_extent(renderer))
    assert {t.get_text() for t in legend.get_texts()} >= {"expected best", "expected worst"}


def test_document_text_is_never_read_as_mathtext(figures: list[Any]) -> None:
    docs = (ScenarioDocument("A", "Costs $5 and $6 now."), ScenarioDocument("B", "Free."))
    s = Scenario("price", "Price $x$", "en", "What is $5?", docs, "A", "B", {}, "prices")
    fig = demo_figure(_run(s))
    figures.append(fig)
    _drawn(fig)
    ax = fig.axes[0]
    assert "What is $5?" in ax.get_title(loc="left")
    from matplotlib.text import Text

    (title,) = [t for t in ax.get_children() if isinstance(t, Text) and "$5?" in t.get_text()]
    assert not title.get_parse_math()
    labels = ax.get_yticklabels()
    assert labels[0].get_text().startswith("A: Costs $5 and $6")
    assert not any(label.get_parse_math() for label in labels)


def _cjk_font_installed() -> bool:
    """A CJK font file on the system, whether or not matplotlib's font cache has seen it (a
    font installed after matplotlib first ran is only on disk: the charts add it)."""
    from matplotlib import font_manager

    from rankgate.insight.charts import _cjk_font_files

    listed = CJK_FONTS & {f.name for f in font_manager.fontManager.ttflist}
    return bool(listed) or bool(_cjk_font_files())


def test_cjk_query_and_documents_render_with_a_cjk_font(figures: list[Any], tmp_path: Path) -> None:
    if not _cjk_font_installed():
        pytest.skip("no CJK font installed (fonts-noto-cjk or fonts-wqy-zenhei)")
    s = get_scenario("tesla-winter-range", "zh")
    fig = demo_figure(_run(s))
    figures.append(fig)
    assert s.query in fig.axes[0].get_title(loc="left")
    assert _glyph_warnings(fig) == []
    # The check can fail: the same title in a Latin-only font misses its glyphs.
    fig.axes[0].set_title(s.query, loc="left", fontfamily="DejaVu Sans")
    assert _glyph_warnings(fig)
    korean = demo_chart(_run(get_scenario("router-password", "ko")), tmp_path / "ko.png")
    assert korean.read_bytes().startswith(PNG)


def _one_rerank() -> list[Observation]:
    return [Observation(ts=1.0, documents=3, displaced=True, gap=0.3, low=1)]


def test_one_point_health_chart_shows_the_point_on_integer_ticks(figures: list[Any]) -> None:
    settings = HealthSettings(min_requests=1, window=50)
    fig = health_figure(health_series(_one_rerank(), settings), settings)
    figures.append(fig)
    renderer = _drawn(fig)
    panels = fig.axes
    assert len(panels) == 3
    for ax in panels:
        value = ax.lines[0]
        assert list(value.get_xdata()) == [1]
        assert value.get_marker() not in (None, "", " ", "None") and value.get_markersize() > 0
        low, high = ax.get_xlim()
        assert low < 1 < high
        ticks = [t for t in ax.get_xticks() if low <= t <= high]
        assert ticks and all(float(t).is_integer() for t in ticks), ticks
    (legend,) = fig.legends
    box = legend.get_window_extent(renderer)
    assert not any(box.overlaps(ax.get_window_extent(renderer)) for ax in panels)
    colours = {to_hex(line.get_color()) for ax in panels for line in ax.lines}
    assert colours <= OKABE_ITO


def test_long_health_series_has_integer_ticks_and_marks_alerts(figures: list[Any]) -> None:
    settings = HealthSettings(min_requests=1, window=20)
    observations = [
        Observation(ts=float(i), documents=3, displaced=False, gap=0.05, low=0) for i in range(90)
    ]
    fig = health_figure(health_series(observations, settings), settings)
    figures.append(fig)
    _drawn(fig)
    ax = fig.axes[0]
    assert all(float(t).is_integer() for t in ax.get_xticks())
    alerting = [line for line in ax.lines if line.get_label() == "alerting"]
    assert alerting and alerting[0].get_marker() == "^"  # a shape, not only a colour


def test_eval_chart_legend_clear_of_the_bars(
    figures: list[Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import matplotlib.pyplot as plt

    from rankgate.funnel.evaluation import EvalReport, save_chart

    # Keep the figure save_chart closes, to read it.
    monkeypatch.setattr(plt, "close", figures.append)
    measures = ["nDCG@10", "RR@10", "R@10", "R@50"]
    report = EvalReport(
        measures,
        {
            "first stage": dict.fromkeys(measures, 0.97),
            "first stage + rerank": dict.fromkeys(measures, 1.0),
        },
        {},
        12,
        50,
    )
    assert save_chart(report, tmp_path / "eval.png").read_bytes().startswith(PNG)
    (fig,) = figures
    renderer = _drawn(fig)
    ax = fig.axes[0]
    (legend,) = fig.legends
    box = legend.get_window_extent(renderer)
    bars = _bars(ax)
    assert len(bars) == 8
    assert not any(box.overlaps(b.get_window_extent(renderer)) for b in bars)
    assert not box.overlaps(ax.get_window_extent(renderer))
    colours = {to_hex(b.get_facecolor()) for b in bars}
    assert len(colours) == 2 and colours <= OKABE_ITO
    assert len({b.get_hatch() or "" for b in bars}) == 2


def test_reliability_legend_sits_outside_the_axes(figures: list[Any]) -> None:
    pytest.importorskip("sklearn")
    import numpy as np

    from rankgate.engine.calibration import FittedFor
    from rankgate.insight.calibration_fit import fit_calibration
    from rankgate.insight.charts import reliability_figure

    rng = np.random.default_rng(3)
    x = rng.normal(0.0, 2.0, 400)
    y = (rng.uniform(size=x.shape) < 1 / (1 + np.exp(-(2 * x - 1)))).astype(np.int64)
    fitted_for = FittedFor(model="m", revision=None, max_length=512, long_documents="chunk")
    fig = reliability_figure(fit_calibration(x, y, fitted_for=fitted_for))
    figures.append(fig)
    renderer = _drawn(fig)
    (legend,) = fig.legends
    box = legend.get_window_extent(renderer)
    assert not any(box.overlaps(ax.get_window_extent(renderer)) for ax in fig.axes)
    counts = fig.axes[1]
    assert all(float(t).is_integer() for t in counts.get_yticks())


def test_finetune_chart_legend_clear_of_the_bars(
    figures: list[Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import matplotlib.pyplot as plt

    from rankgate.learn.report import MEASURES, DevReport, save_comparison_chart

    monkeypatch.setattr(plt, "close", figures.append)
    before = DevReport(20, dict.fromkeys(MEASURES, 0.95), 0.9, 0.2, 0.1)
    after = DevReport(20, dict.fromkeys(MEASURES, 1.0), 0.95, 0.3, 0.05)
    path = save_comparison_chart(before, after, tmp_path / "ft.png", title="dev $1.jsonl")
    assert path.read_bytes().startswith(PNG)
    (fig,) = figures
    renderer = _drawn(fig)
    ax = fig.axes[0]
    assert "dev $1.jsonl" in ax.get_title()
    (legend,) = fig.legends
    box = legend.get_window_extent(renderer)
    assert not box.overlaps(ax.get_window_extent(renderer))
    assert {to_hex(b.get_facecolor()) for b in _bars(ax)} <= OKABE_ITO


def test_a_cjk_font_installed_after_matplotlib_cached_its_list_is_found(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import matplotlib
    from matplotlib import font_manager

    from rankgate.insight.charts import _CJK_FONTS, _add_cjk_fallback

    if not _cjk_font_installed():
        pytest.skip("no CJK font installed (fonts-noto-cjk or fonts-wqy-zenhei)")
    latin = [f for f in font_manager.fontManager.ttflist if f.name not in _CJK_FONTS]
    monkeypatch.setattr(font_manager.fontManager, "ttflist", latin)  # the stale cache
    monkeypatch.setitem(matplotlib.rcParams, "font.family", ["sans-serif"])
    _add_cjk_fallback(matplotlib)
    assert matplotlib.rcParams["font.family"][-1] in _CJK_FONTS
