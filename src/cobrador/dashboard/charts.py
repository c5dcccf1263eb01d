"""Server-rendered SVG charts for the dashboard: no charting library, no script needed to draw them, so
the page works offline and prints. Each chart is a plain <svg> with a <title> per bar and point (the
browser's own tooltip) and `data-*` attributes the tests and dashboard.js read.

* `movements_chart`: per period, the MRR gained (new, expansion, reactivation) stacked upwards and the
  MRR lost (contraction, churn) stacked downwards from a zero line, with the MRR at the end of each period
  as a line on its own scale (right axis).
* `line_chart`: one series (paying customers) as a line with dots.
"""

from django.utils.html import escape
from django.utils.safestring import mark_safe

GAINS = (("new", "#2f9e44"), ("expansion", "#74b816"), ("reactivation", "#1c7ed6"))
LOSSES = (("contraction", "#f59f00"), ("churn", "#e03131"))
LINE = "#343a40"
WIDTH, HEIGHT = 960, 320
LEFT, RIGHT, TOP, BOTTOM = 72, 80, 16, 36


def _nice_ceiling(value: float) -> float:
    """The smallest 1, 2, 2.5 or 5 x 10^k at or above `value` (an axis top)."""
    if value <= 0:
        return 1
    magnitude = 10 ** (len(str(int(value))) - 1)
    for step in (1, 2, 2.5, 5, 10):
        if step * magnitude >= value:
            return step * magnitude
    return 10 * magnitude


def _money_label(centavos: float) -> str:
    reais = centavos / 100
    if abs(reais) >= 1_000_000:
        return f"R$ {reais / 1_000_000:.1f} mi".replace(".", ",")
    if abs(reais) >= 1_000:
        return f"R$ {reais / 1_000:.1f} mil".replace(".", ",")
    return f"R$ {reais:.0f}"


def _reais(centavos: int) -> str:
    whole, cents = divmod(abs(centavos), 100)
    text = f"{whole:,}".replace(",", ".") + f",{cents:02d}"
    return ("-" if centavos < 0 else "") + "R$ " + text


def _label(period, interval: str) -> str:
    return period.strftime("%m/%Y") if interval == "month" else period.strftime("%d/%m")


def _x_labels(count: int) -> set[int]:
    every = max(1, -(-count // 12))
    return {i for i in range(count) if i % every == 0} | ({count - 1} if count else set())


def movements_chart(points: list[dict], interval: str) -> str:
    if not points:
        return mark_safe('<p class="empty">No data for this range yet.</p>')
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    up = max(sum(p[k] for k, _ in GAINS) for p in points)
    down = max(sum(p[k] for k, _ in LOSSES) for p in points)
    top = _nice_ceiling(max(up, 1))
    bottom = _nice_ceiling(down) if down else 0
    span = top + bottom
    zero_y = TOP + plot_h * top / span
    mrr_top = _nice_ceiling(max(max(p["mrr"] for p in points), 1))
    step = plot_w / len(points)
    bar_w = max(1.0, step * 0.7)
    out = [f'<svg class="chart" id="mrr-chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
           f'aria-label="MRR and its movements" data-points="{len(points)}" preserveAspectRatio="none">']
    # Grid and axes: the movement scale on the left, the MRR scale on the right.
    for fraction in (0, 0.25, 0.5, 0.75, 1):
        y = TOP + plot_h * fraction
        value = top - span * fraction
        out.append(f'<line class="grid" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}"/>')
        out.append(f'<text class="axis" x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">'
                   f'{escape(_money_label(value))}</text>')
        out.append(f'<text class="axis mrr-axis" x="{WIDTH - RIGHT + 6}" y="{y + 4:.1f}">'
                   f'{escape(_money_label(mrr_top * (1 - fraction)))}</text>')
    out.append(f'<line class="zero" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{zero_y:.1f}" y2="{zero_y:.1f}"/>')
    line = []
    labels = _x_labels(len(points))
    for i, point in enumerate(points):
        x = LEFT + i * step + (step - bar_w) / 2
        period = point["period"].isoformat()
        y = zero_y
        for kind, color in GAINS:
            height = plot_h * point[kind] / span
            if height > 0:
                y -= height
                out.append(f'<rect class="bar {kind}" x="{x:.1f}" y="{y:.1f}" width="{bar_w:.1f}" '
                           f'height="{height:.1f}" fill="{color}" data-period="{period}" data-kind="{kind}">'
                           f'<title>{period} {kind}: {escape(_reais(point[kind]))}</title></rect>')
        y = zero_y
        for kind, color in LOSSES:
            height = plot_h * point[kind] / span
            if height > 0:
                out.append(f'<rect class="bar {kind}" x="{x:.1f}" y="{y:.1f}" width="{bar_w:.1f}" '
                           f'height="{height:.1f}" fill="{color}" data-period="{period}" data-kind="{kind}">'
                           f'<title>{period} {kind}: -{escape(_reais(point[kind]))}</title></rect>')
                y += height
        cx = LEFT + i * step + step / 2
        cy = TOP + plot_h * (1 - point["mrr"] / mrr_top)
        line.append((cx, cy, point))
        if i in labels:
            out.append(f'<text class="axis" x="{cx:.1f}" y="{HEIGHT - 12}" text-anchor="middle">'
                       f'{_label(point["period"], interval)}</text>')
    out.append('<polyline class="mrr-line" fill="none" stroke="{}" stroke-width="2" points="{}"/>'.format(
        LINE, " ".join(f"{x:.1f},{y:.1f}" for x, y, _ in line)))
    if len(line) <= 120:
        for x, y, point in line:
            out.append(f'<circle class="mrr-point" cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{LINE}" '
                       f'data-period="{point["period"].isoformat()}" data-mrr="{point["mrr"]}">'
                       f'<title>{point["period"].isoformat()} MRR {escape(_reais(point["mrr"]))}</title></circle>')
    out.append("</svg>")
    return mark_safe("".join(out))


def line_chart(points: list[dict], key: str, *, chart_id: str, label: str, interval: str) -> str:
    if not points:
        return mark_safe('<p class="empty">No data for this range yet.</p>')
    plot_w, plot_h = WIDTH - LEFT - RIGHT, 200 - TOP - BOTTOM
    height = 200
    top = _nice_ceiling(max(max(p[key] for p in points), 1))
    step = plot_w / len(points)
    out = [f'<svg class="chart" id="{chart_id}" viewBox="0 0 {WIDTH} {height}" role="img" '
           f'aria-label="{escape(label)}" data-points="{len(points)}" preserveAspectRatio="none">']
    for fraction in (0, 0.5, 1):
        y = TOP + plot_h * fraction
        out.append(f'<line class="grid" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}"/>')
        out.append(f'<text class="axis" x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">'
                   f'{round(top * (1 - fraction))}</text>')
    coords = []
    labels = _x_labels(len(points))
    for i, point in enumerate(points):
        x = LEFT + i * step + step / 2
        y = TOP + plot_h * (1 - point[key] / top)
        coords.append((x, y, point))
        if i in labels:
            out.append(f'<text class="axis" x="{x:.1f}" y="{height - 12}" text-anchor="middle">'
                       f'{_label(point["period"], interval)}</text>')
    out.append('<polyline class="series" fill="none" stroke="#1c7ed6" stroke-width="2" points="{}"/>'.format(
        " ".join(f"{x:.1f},{y:.1f}" for x, y, _ in coords)))
    if len(coords) <= 120:
        for x, y, point in coords:
            out.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="#1c7ed6">'
                       f'<title>{point["period"].isoformat()}: {point[key]} {escape(label)}</title></circle>')
    out.append("</svg>")
    return mark_safe("".join(out))


def heat_color(rate: float | None) -> str:
    """A cell's background for a retention rate: white at 0 through green at 100 % (and beyond)."""
    if rate is None:
        return "transparent"
    strength = max(0.0, min(rate, 1.2)) / 1.2
    return f"rgba(47, 158, 68, {0.08 + 0.82 * strength:.2f})"
