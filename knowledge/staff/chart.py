"""The daily-volume chart for /stats and `report --chart`: a stacked bar per day, by outcome.

matplotlib's object API with the Agg canvas (no pyplot, no display, no global
state), so it is safe in a worker thread. Chinese labels need a CJK font: the
`mplfonts` dependency ships Noto Sans CJK SC, registered here with matplotlib, so
a fresh machine draws Chinese too. Only if no CJK font is found at all do the
labels fall back to English rather than drawing empty boxes.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import warnings
from functools import lru_cache
from pathlib import Path

from knowledge.staff.stats import QUESTION_OUTCOMES, Stats

# Fonts with simplified-Chinese glyphs, in order of preference, as matplotlib names them.
CJK_FONTS = (
    "Noto Sans CJK SC", "Noto Sans SC", "Source Han Sans SC", "Source Han Sans CN", "WenQuanYi Zen Hei",
    "WenQuanYi Micro Hei", "Droid Sans Fallback", "AR PL UMing CN", "AR PL UKai CN", "Microsoft YaHei",
    "SimHei", "PingFang SC", "Hiragino Sans GB", "Heiti SC", "Noto Serif CJK SC",
)
COLOURS = {"answered": "#4caf50", "ambiguous": "#ffb300", "unknown": "#e53935"}
LABELS_ZH = {"answered": "已回答", "ambiguous": "需澄清", "unknown": "未涵盖",
             "title": "每日提问量（按结果）", "y": "提问数"}
LABELS_EN = {"answered": "answered", "ambiguous": "ambiguous", "unknown": "not covered",
             "title": "Questions per day by outcome", "y": "questions"}


# Shipped by the mplfonts package (a dependency); found without importing it.
PACKAGED_FONT = ("mplfonts", "fonts/NotoSansCJKsc-Regular.otf")


def packaged_font_file() -> Path | None:
    spec = importlib.util.find_spec(PACKAGED_FONT[0])
    for folder in (spec.submodule_search_locations or []) if spec else []:
        path = Path(folder) / PACKAGED_FONT[1]
        if path.is_file():
            return path
    return None


@lru_cache(maxsize=1)
def cjk_font() -> str | None:
    """The first CJK font matplotlib knows (the packaged one registered first), or None."""
    from matplotlib import font_manager

    packaged = packaged_font_file()
    if packaged is not None:
        # A damaged file: fall back to the machine's fonts.
        with contextlib.suppress(OSError, RuntimeError, ValueError):
            font_manager.fontManager.addfont(str(packaged))
    installed = {f.name for f in font_manager.fontManager.ttflist}
    return next((name for name in CJK_FONTS if name in installed), None)


def daily_chart_png(stats: Stats) -> bytes:
    """The chart as PNG bytes."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    font = cjk_font()
    labels = LABELS_ZH if font else LABELS_EN
    days = stats.period.days
    fig = Figure(figsize=(max(6.0, min(14.0, 0.35 * len(days) + 3)), 4.0), dpi=110)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    xs = list(range(len(days)))
    bottom = [0] * len(days)
    for outcome in QUESTION_OUTCOMES:
        values = [stats.daily.get(d, {}).get(outcome, 0) for d in days]
        ax.bar(xs, values, bottom=bottom, color=COLOURS[outcome], label=labels[outcome], width=0.8)
        bottom = [b + v for b, v in zip(bottom, values, strict=True)]
    step = max(1, len(days) // 15)  # at most ~15 date labels, whatever the period
    ax.set_xticks(xs[::step], [f"{d:%m-%d}" for d in days][::step], rotation=45 if len(days) > 10 else 0)
    ax.set_xlim(-0.6, len(days) - 0.4)
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylim(0, max(bottom + [1]) * 1.3)  # headroom for the legend
    p = stats.period
    ax.set_title(f"{labels['title']}  {p.first_day:%Y-%m-%d} – {p.last_day:%Y-%m-%d}")
    ax.set_ylabel(labels["y"])
    ax.legend(loc="upper left", frameon=False, ncols=3)
    ax.spines[["top", "right"]].set_visible(False)
    if font:
        for text in (ax.title, ax.yaxis.label, *ax.get_legend().get_texts()):
            text.set_fontfamily([font, "DejaVu Sans"])
    fig.tight_layout()
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # a missing glyph must never fail the chart
        fig.savefig(buffer, format="png")
    return buffer.getvalue()


def write_daily_chart(stats: Stats, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(daily_chart_png(stats))
    return path
