"""Charts drawn by the server as inline SVG: no JavaScript, no library, nothing from a CDN, and
nothing a strict Content-Security-Policy forbids (presentation attributes, no style)."""

from __future__ import annotations

from collections.abc import Sequence

from django.contrib.humanize.templatetags.humanize import intcomma
from django.utils.formats import date_format
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from .usage import DayTotal

WIDTH = 720
HEIGHT = 180
TOP = 16  # room for the largest figure
BOTTOM = 20  # room for the first and last day
GAP = 0.2  # of a bar's slot left empty


def daily_tokens(days: Sequence[DayTotal], *, label: str) -> SafeString:
    """Bars of the tokens per day, oldest on the left; each bar's `<title>` gives its day and
    figure (a tooltip, and what a screen reader reads)."""
    if not days:
        return SafeString("")
    peak = max(day.totals.total for day in days) or 1
    slot = WIDTH / len(days)
    usable = HEIGHT - TOP - BOTTOM
    bars = []
    for index, day in enumerate(days):
        height = usable * day.totals.total / peak
        bars.append(
            (
                f"{index * slot + slot * GAP / 2:.1f}",
                f"{TOP + usable - height:.1f}",
                f"{slot * (1 - GAP):.1f}",
                f"{height:.1f}",
                date_format(day.day, "DATE_FORMAT"),
                intcomma(day.totals.total),
            )
        )
    return format_html(
        '<svg class="usage-chart" role="img" aria-label="{label}" viewBox="0 0 {w} {height}" '
        'width="100%" preserveAspectRatio="none" xmlns="http://www.w3.org/2000/svg">'
        "<title>{label}</title>"
        '<line x1="0" y1="{base}" x2="{w}" y2="{base}" stroke="currentColor" stroke-width="1"/>'
        '<text x="0" y="11" font-size="11" fill="currentColor">{peak}</text>'
        "{bars}"
        '<text x="0" y="{h}" font-size="11" fill="currentColor">{first}</text>'
        '<text x="{w}" y="{h}" font-size="11" fill="currentColor" text-anchor="end">{last}</text>'
        "</svg>",
        label=label,
        w=WIDTH,
        height=HEIGHT,
        h=HEIGHT - 4,
        base=TOP + usable,
        peak=intcomma(peak),
        bars=format_html_join(
            "",
            '<rect class="usage-bar" x="{}" y="{}" width="{}" height="{}" fill="#417690">'
            "<title>{}: {}</title></rect>",
            bars,
        ),
        first=date_format(days[0].day, "DATE_FORMAT"),
        last=date_format(days[-1].day, "DATE_FORMAT"),
    )
