"""The shared look of crm-migrate pages: one stylesheet and server-side SVG charts.

Charts are plain SVG strings (no JavaScript, no network), so a report opens anywhere and
the review app works under a strict Content-Security-Policy. Colours come from CSS classes
in ``migrate/web/static/style.css``; no chart uses a ``style`` attribute.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from html import escape
from importlib.resources import files

WIDTH = 560
ROW = 22          # height of one horizontal bar row
LABEL = 160       # width of the label column of horizontal charts
PLOT_HEIGHT = 160  # height of the plot area of column charts


def stylesheet() -> str:
    """The CSS every page shares (the review app serves the same file as /static/style.css)."""
    return files("migrate.web").joinpath("static/style.css").read_text(encoding="utf-8")


def page(title: str, body: str, *, subtitle: str = "") -> str:
    """A self-contained HTML page (inline CSS, no network) with the shared look.

    Example:
        >>> "<style>" in page("Profile", "<p>hi</p>")
        True
    """
    sub = f"<p class='muted'>{escape(subtitle)}</p>" if subtitle else ""
    return (f"<!doctype html><html lang='en'><head><meta charset='utf-8'>"
            f"<meta name='viewport' content='width=device-width, initial-scale=1'><title>{escape(title)}</title>"
            f"<style>{stylesheet()}</style></head><body><header class='top'><span class='brand'>crm-migrate</span>"
            f"<span>{escape(title)}</span></header><main><h1>{escape(title)}</h1>{sub}{body}</main></body></html>\n")


def _svg(height: float, body: str, label: str) -> str:
    return (f"<svg class='chart' role='img' aria-label='{escape(label)}' viewBox='0 0 {WIDTH} {math.ceil(height)}' "
            f"width='{WIDTH}' height='{math.ceil(height)}' xmlns='http://www.w3.org/2000/svg'>"
            f"<title>{escape(label)}</title>{body}</svg>")


def _text(x: float, y: float, text: str, *, anchor: str = "start", cls: str = "") -> str:
    klass = f" class='{cls}'" if cls else ""
    return f"<text x='{x:.1f}' y='{y:.1f}' text-anchor='{anchor}'{klass}>{escape(text)}</text>"


def _rect(x: float, y: float, w: float, h: float, cls: str, tip: str = "") -> str:
    title = f"<title>{escape(tip)}</title>" if tip else ""
    return f"<rect x='{x:.1f}' y='{y:.1f}' width='{max(w, 0):.1f}' height='{h:.1f}' class='{cls}'>{title}</rect>"


def _number(value: float) -> str:
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.2f}"


def legend(segments: Sequence[str]) -> str:
    """The HTML legend of a :func:`stacked_bars` chart (segment i has class ``s<i>``)."""
    return "<div class='legend'>" + "".join(f"<span><i class='s{i}'></i>{escape(s)}</span>"
                                            for i, s in enumerate(segments)) + "</div>"


def bar_chart(items: Sequence[tuple[str, float]], *, label: str, css: str = "fill") -> str:
    """Horizontal bars, one per ``(name, value)``, longest first as given.

    Example:
        >>> bar_chart([("invalid_email", 12), ("missing_name", 3)], label="reasons").count("<rect")
        2
    """
    return stacked_bars([(name, [value]) for name, value in items], [label], label=label, classes=[css])


def stacked_bars(rows: Sequence[tuple[str, Sequence[float]]], segments: Sequence[str], *, label: str,
                 classes: Sequence[str] | None = None) -> str:
    """One horizontal bar per row, split into segments (pair it with :func:`legend`).

    All rows share one scale, so a source with more rows has a longer bar; the total is
    printed at the end of each bar.

    Example:
        >>> svg = stacked_bars([("crm", [5, 2, 1])], ["loaded", "merged", "quarantined"], label="funnel")
        >>> svg.count("<rect"), ">8<" in svg
        (3, True)
    """
    classes = list(classes or [f"s{i}" for i in range(len(segments))])
    longest = max((sum(values) for _, values in rows), default=0) or 1
    span = WIDTH - LABEL - 70
    parts = []
    for i, (name, values) in enumerate(rows):
        y = i * ROW + 4
        parts.append(_text(LABEL - 8, y + ROW / 2 + 4, name, anchor="end"))
        x = float(LABEL)
        for value, segment, cls in zip(values, segments, classes):
            w = span * value / longest
            if value:
                parts.append(_rect(x, y + 2, w, ROW - 6, cls, f"{name}: {segment} {_number(value)}"))
            x += w
        parts.append(_text(x + 6, y + ROW / 2 + 4, _number(sum(values))))
    return _svg(len(rows) * ROW + 8, "".join(parts), label)


def column_chart(items: Sequence[tuple[str, float]], *, label: str, markers: Mapping[str, float] | None = None,
                 every: int = 1) -> str:
    """Vertical columns, one per ``(name, value)``; ``markers`` draw labelled lines at fractional column positions.

    ``every`` prints only every n-th column name (for histograms with many bins).

    Example:
        >>> column_chart([("1", 40), ("2", 7), ("3+", 1)], label="cluster sizes").count("<rect")
        3
    """
    top, left, bottom = 18, 44, 22
    n = max(len(items), 1)
    step = (WIDTH - left - 8) / n
    highest = max((v for _, v in items), default=0) or 1
    base = top + PLOT_HEIGHT
    parts = [f"<line x1='{left}' y1='{base}' x2='{WIDTH - 8}' y2='{base}' class='axis'/>",
             _text(left - 6, top + 4, _number(highest), anchor="end", cls="muted"),
             _text(left - 6, base, "0", anchor="end", cls="muted")]
    for i, (name, value) in enumerate(items):
        h = PLOT_HEIGHT * value / highest
        x = left + i * step
        parts.append(_rect(x + 1, base - h, step - 2, h, "fill", f"{name}: {_number(value)}"))
        if i % every == 0:
            parts.append(_text(x + step / 2, base + 15, name, anchor="middle", cls="muted"))
    for j, (name, position) in enumerate((markers or {}).items()):
        x = left + position * step
        parts.append(f"<line x1='{x:.1f}' y1='{top - 4}' x2='{x:.1f}' y2='{base}' class='marker'/>")
        parts.append(_text(x + 4, top + 8 + 14 * j, name, cls="marker-label"))
    return _svg(top + PLOT_HEIGHT + bottom, "".join(parts), label)


def histogram(counts: Sequence[int], edges: Sequence[float], *, label: str,
              markers: Mapping[str, float] | None = None) -> str:
    """Columns for equal-width bins (``len(edges) == len(counts) + 1``), with markers at values on the same axis.

    Example:
        >>> svg = histogram([1, 4, 2], [0.0, 1.0, 2.0, 3.0], label="weights", markers={"link": 2.5})
        >>> svg.count("<rect"), "link" in svg
        (3, True)
    """
    width = (edges[-1] - edges[0]) / max(len(counts), 1) or 1.0
    items = [(f"{edges[i]:g}", float(c)) for i, c in enumerate(counts)]
    at = {name: (value - edges[0]) / width for name, value in (markers or {}).items() if edges[0] <= value <= edges[-1]}
    return column_chart(items, label=label, markers=at, every=max(1, len(counts) // 8))


def waterfall(steps: Sequence[tuple[str, float]], *, label: str, final: str = "") -> str:
    """An explanation waterfall: each step's bar starts where the running total ended.

    Positive steps are green, negative red; a last dark bar shows the total from zero,
    annotated with ``final`` (e.g. the match probability).

    Example:
        >>> svg = waterfall([("prior", -6.6), ("email exact", 9.1), ("birth date differs", -2.0)],
        ...                 label="why", final="p = 0.30")
        >>> svg.count("class='pos'"), svg.count("class='neg'"), "p = 0.30" in svg
        (1, 2, True)
    """
    running, spans = 0.0, []
    for name, weight in steps:
        spans.append((name, running, running + weight))
        running += weight
    low = min([0.0, *(min(a, b) for _, a, b in spans)])
    high = max([0.0, *(max(a, b) for _, a, b in spans)])
    plot = WIDTH - LABEL - 90
    scale = plot / ((high - low) or 1.0)

    def x(v: float) -> float:
        return LABEL + (v - low) * scale

    rows = [*spans, ("total", 0.0, running)]
    parts = [f"<line x1='{x(0):.1f}' y1='0' x2='{x(0):.1f}' y2='{len(rows) * ROW + 4}' class='axis'/>"]
    for i, (name, start, end) in enumerate(rows):
        y = i * ROW + 4
        is_total = i == len(spans)
        cls = "total" if is_total else ("pos" if end >= start else "neg")
        parts.append(_text(LABEL - 8, y + ROW / 2 + 4, name, anchor="end"))
        parts.append(_rect(x(min(start, end)), y + 3, abs(end - start) * scale, ROW - 8, cls,
                           f"{name}: {end - start:+.2f}"))
        text = f"{end:+.2f}" + (f" · {final}" if final else "") if is_total else f"{end - start:+.2f}"
        parts.append(_text(x(max(start, end)) + 6, y + ROW / 2 + 4, text))
    return _svg(len(rows) * ROW + 8, "".join(parts), label)
