"""Bar charts drawn on the server as SVG: no chart library, no script, works offline."""

from __future__ import annotations

from collections.abc import Sequence

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

WIDTH, HEIGHT = 640, 240
LEFT, BOTTOM, TOP = 56, 48, 12


def _short(number: float) -> str:
    for limit, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(number) >= limit:
            return f"{number / limit:.1f}{suffix}"
    return f"{number:g}"


def bar_chart(points: Sequence[tuple[str, float]], title: str, *, empty: str = "No data") -> SafeString:
    """One bar per (label, value), scaled to the largest; titles on bars give the exact value."""
    label = escape(title)
    head = (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-label="{label}" class="bar-chart"><title>{label}</title>'
    )
    if not points:
        return mark_safe(
            f'{head}<text x="{WIDTH // 2}" y="{HEIGHT // 2}" text-anchor="middle">{escape(empty)}</text></svg>'
        )
    top = max(value for _, value in points) or 1
    plot_w, plot_h = WIDTH - LEFT - 8, HEIGHT - BOTTOM - TOP
    slot = plot_w / len(points)
    bar_w = max(2.0, slot * 0.7)
    parts = [head]
    for fraction in (0, 0.5, 1):  # gridlines with their values
        y = TOP + plot_h * (1 - fraction)
        parts.append(f'<line x1="{LEFT}" x2="{WIDTH - 8}" y1="{y:.1f}" y2="{y:.1f}" stroke="#dde1ea"/>')
        parts.append(
            f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{_short(top * fraction)}</text>'
        )
    every = max(1, len(points) // 12)  # at most about a dozen axis labels
    for index, (name, value) in enumerate(points):
        h = plot_h * (value / top)
        x = LEFT + index * slot + (slot - bar_w) / 2
        y = TOP + plot_h - h
        parts.append(
            f'<rect class="bar" x="{x:.1f}" y="{y:.1f}" width="{bar_w:.1f}" height="{h:.1f}">'
            f"<title>{escape(name)}: {value:,.6g}</title></rect>"
        )
        if index % every == 0:
            cx = x + bar_w / 2
            text = escape(name if len(name) <= 16 else name[:15] + "…")
            parts.append(
                f'<text x="{cx:.1f}" y="{HEIGHT - BOTTOM + 14}" text-anchor="end" '
                f'transform="rotate(-30 {cx:.1f} {HEIGHT - BOTTOM + 14})">{text}</text>'
            )
    parts.append("</svg>")
    return mark_safe("".join(parts))
