"""The audit's host-by-host compatibility matrix as one SVG drawing.

Rows are sources (where a VM booted), columns targets (where its saved state
would be restored). Hosts are ordered by compatible group, then by distinct
profile, so each pair of profiles is one rectangular block of cells with one
verdict; the block is a ``<g>`` whose ``<title>`` (the tooltip of every cell in
it) gives the verdict and, when refused, the reasons. Every host pair is its
own ``<rect>`` in cell units (300 hosts: 90,000 cells; a ``<use>`` per cell would be
smaller but Chromium draws 90,000 of them three times slower). Above
``CELL_HOST_LIMIT`` hosts a block is one rectangle., so the drawing is exact at any zoom.

Large audits stay readable: the cell size shrinks with the host count (never
below ``MIN_CELL`` pixels), labels follow the cell size and are cut in the middle to
``LABEL_CHARS`` characters (the full name is the label's tooltip), column
labels are rotated.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .markup import host_label, middle, short, text

GRID_PIXELS = 1200
"""The grid is drawn about this wide when cells would otherwise be larger than that allows."""
CELL_HOST_LIMIT = 400
"""Up to this many hosts every host pair is its own cell (400: 160,000 cells, about 6 MB);
above, each block of one source and one target profile is one rectangle (same picture and
tooltips, a size that follows distinct profiles, not hosts squared)."""
MAX_CELL = 24
MIN_CELL = 4
LABEL_CHARS = 28
TITLE_FEATURES = 24
"""Features listed per reason in a tooltip; the rest are counted."""

COLOURS = {
    "mutual": "#2e8b57",  # compatible both ways: same group
    "oneway": "#9fd8b0",  # compatible this way only
    "refused": "#d64545",
    "self": "#9a9a9a",  # a host with itself
}
LEGEND = {
    "mutual": "compatible both ways",
    "oneway": "compatible this way only",
    "refused": "refused (hover: reasons)",
    "self": "the host itself",
}
GROUP_COLOURS = ("#4269d0", "#efb118", "#ff725c", "#6cc5b0", "#a463f2", "#ff8ab7", "#97bbf5")


@dataclass
class Matrix:
    """The audit document arranged for drawing: display order and per-profile blocks."""

    names: list[str]
    order: list[int]  # host indices in display order
    runs: list[tuple[int, int, int]]  # (profile, first display position, host count)
    profile_of: list[int]
    group_of: list[int]  # per profile
    compatible: list[list[bool]]  # [source profile][target profile]
    reasons: dict[tuple[int, int], list[dict[str, Any]]]
    profiles: list[dict[str, Any]]
    groups: int
    position: list[int] = field(default_factory=list)  # display position per host index

    @property
    def size(self) -> int:
        return len(self.order)

    def verdict(self, source: int, target: int) -> str:
        """The kind of cell for two distinct profiles (or the same one)."""
        if not self.compatible[source][target]:
            return "refused"
        return "mutual" if self.compatible[target][source] else "oneway"


def matrix_of(doc: dict[str, Any]) -> Matrix:
    """Arrange an audit document (`AuditReport.to_json`) for drawing."""
    hosts = doc["hosts"]
    names = [str(h["name"]) for h in hosts]
    profile_of = [int(h["profile"]) for h in hosts]
    profiles = list(doc["distinct_profiles"])
    group_of = [int(p["group"]) for p in profiles]
    order = sorted(range(len(hosts)), key=lambda i: (group_of[profile_of[i]], profile_of[i], i))
    runs: list[tuple[int, int, int]] = []
    for pos, i in enumerate(order):
        p = profile_of[i]
        if runs and runs[-1][0] == p:
            runs[-1] = (p, runs[-1][1], runs[-1][2] + 1)
        else:
            runs.append((p, pos, 1))
    profile_by_name = dict(zip(names, profile_of, strict=True))
    reasons: dict[tuple[int, int], list[dict[str, Any]]] = {}
    for pair in doc.get("blocking_pairs") or []:
        if doc.get("pairs_mode") == "profiles":
            key = (profile_by_name[pair["source_example"]], profile_by_name[pair["target_example"]])
        else:
            key = (profile_by_name[pair["source"]], profile_by_name[pair["target"]])
        reasons.setdefault(key, list(pair.get("reasons") or []))
    position = [0] * len(order)
    for pos, i in enumerate(order):
        position[i] = pos
    return Matrix(
        names=names,
        order=order,
        runs=runs,
        profile_of=profile_of,
        group_of=group_of,
        compatible=[[bool(v) for v in row] for row in doc["matrix"]["compatible"]],
        reasons=reasons,
        profiles=profiles,
        groups=len(doc.get("groups") or []),
        position=position,
    )


def cell_size(hosts: int) -> int:
    """Pixels per cell: large for small audits, never below MIN_CELL (zoom in the browser)."""
    return max(MIN_CELL, min(MAX_CELL, GRID_PIXELS // max(1, hosts)))


def _side(m: Matrix, profile: int, count: int, first: int) -> str:
    """Who a block's rows or columns are, for its tooltip."""
    example = host_label(m.names[m.order[first]])
    if count == 1:
        return example
    brand = str(m.profiles[profile].get("brand") or "").strip()
    about = f" ({brand})" if brand else ""
    return f"{example} and {count - 1} more host(s) of profile #{profile}{about}"


def reason_lines(reasons: list[dict[str, Any]]) -> list[str]:
    """A refusal's reasons as tooltip lines: code, detail, features (cut)."""
    lines = []
    for r in reasons:
        lines.append(f"{r.get('code', '')}: {short(str(r.get('detail') or ''), 400)}")
        features = [str(f) for f in r.get("features") or []]
        if features:
            shown = " ".join(features[:TITLE_FEATURES])
            rest = len(features) - TITLE_FEATURES
            lines.append("  " + shown + (f" \u2026 and {rest} more" if rest > 0 else ""))
    return lines


def block_title(m: Matrix, src: tuple[int, int, int], tgt: tuple[int, int, int]) -> str:
    (p, first_p, n_p), (q, first_q, n_q) = src, tgt
    head = f"{_side(m, p, n_p, first_p)} \u2192 {_side(m, q, n_q, first_q)}"
    kind = m.verdict(p, q)
    if kind == "refused":
        lines = reason_lines(m.reasons.get((p, q), [])) or ["(no reason recorded)"]
        return "\n".join([f"{head}: REFUSED", *lines])
    if p == q and n_p == 1:
        return f"{head}: the host itself"
    return f"{head}: compatible" + ("" if kind == "mutual" else " (this way only)")


@dataclass(frozen=True)
class Layout:
    cell: int
    font: float
    label_width: float
    grid_x: float
    grid_y: float
    width: float
    height: float


LEGEND_HEIGHT = 28
STRIP = 6  # the group colour strip beside the labels
PAD = 8


def layout_of(hosts: int, longest: int) -> Layout:
    cell = cell_size(hosts)
    font = max(3.5, min(12.0, cell * 0.75))
    chars = min(LABEL_CHARS, max(1, longest))
    label_width = chars * font * 0.62 + 4
    grid = cell * hosts
    grid_x = PAD + label_width + STRIP + 2
    grid_y = PAD + label_width + STRIP + 2
    width = max(grid_x + grid + PAD, 4 * 190 + 2 * PAD)
    return Layout(
        cell=cell,
        font=round(font, 1),
        label_width=label_width,
        grid_x=round(grid_x, 1),
        grid_y=round(grid_y, 1),
        width=round(width),
        height=round(grid_y + grid + PAD + LEGEND_HEIGHT),
    )


def render_svg(doc: dict[str, Any], standalone: bool = True) -> str:
    """The matrix as SVG markup (``standalone``: with the XML declaration, for a file)."""
    m = matrix_of(doc)
    n = m.size
    labels = [host_label(name) for name in m.names]
    lay = layout_of(n, max((len(label) for label in labels), default=1))
    c = lay.cell
    out: list[str] = []
    if standalone:
        out.append('<?xml version="1.0" encoding="UTF-8"?>\n')
    out.append(
        f'<svg xmlns="http://www.w3.org/2000/svg" class="matrix" width="{lay.width}" '
        f'height="{lay.height}" viewBox="0 0 {lay.width} {lay.height}" '
        f'font-family="sans-serif" data-hosts="{n}" data-cell="{c}" '
        f'data-grid-x="{lay.grid_x}" data-grid-y="{lay.grid_y}">\n'
        f"<title>Compatibility matrix: {n} host(s), rows are sources (where a VM booted), "
        "columns targets (where its saved state is restored)</title>\n"
    )
    # Labels: rows at the left, columns rotated above; the full name is each label's tooltip.
    out.append(f'<g class="row-labels" font-size="{lay.font}" text-anchor="end">\n')
    for pos, i in enumerate(m.order):
        y = lay.grid_y + pos * c + c * 0.78
        out.append(
            f'<text x="{lay.grid_x - STRIP - 3:.1f}" y="{y:.1f}">'
            f"<title>{text(m.names[i])}</title>{text(middle(labels[i], LABEL_CHARS))}</text>\n"
        )
    out.append("</g>\n")
    out.append(f'<g class="col-labels" font-size="{lay.font}" text-anchor="start">\n')
    for pos, i in enumerate(m.order):
        x = lay.grid_x + pos * c + c * 0.78
        y = lay.grid_y - STRIP - 3
        out.append(
            f'<text transform="translate({x:.1f},{y:.1f}) rotate(-90)">'
            f"<title>{text(m.names[i])}</title>{text(middle(labels[i], LABEL_CHARS))}</text>\n"
        )
    out.append("</g>\n")
    # Group strips beside both axes.
    out.append('<g class="group-strips">\n')
    for g in range(m.groups):
        members = [r for r in m.runs if m.group_of[r[0]] == g]
        if not members:
            continue
        first = members[0][1]
        count = sum(r[2] for r in members)
        colour = GROUP_COLOURS[g % len(GROUP_COLOURS)]
        tip = f"<title>group {g}: {count} host(s)</title>"
        out.append(
            f'<rect x="{lay.grid_x - STRIP - 1:.1f}" y="{lay.grid_y + first * c:.1f}" '
            f'width="{STRIP}" height="{count * c}" fill="{colour}">{tip}</rect>\n'
            f'<rect x="{lay.grid_x + first * c:.1f}" y="{lay.grid_y - STRIP - 1:.1f}" '
            f'width="{count * c}" height="{STRIP}" fill="{colour}">{tip}</rect>\n'
        )
    out.append("</g>\n")
    # The cells, one block per (source profile, target profile). Inside the cells group one
    # unit is one cell: a rect's x is its target's display position, y its source's.
    out.append(
        f'<g class="cells" transform="translate({lay.grid_x},{lay.grid_y}) scale({c})" '
        'shape-rendering="crispEdges">\n'
    )
    w = "0.9" if c >= 10 else "1"
    for src in m.runs:
        p, row0, rows = src
        for tgt in m.runs:
            q, col0, cols = tgt
            kind = m.verdict(p, q)
            out.append(
                f'<g class="block {kind}" fill="{COLOURS[kind]}" data-source-profile="{p}" '
                f'data-target-profile="{q}"><title>{text(block_title(m, src, tgt))}</title>'
            )
            if n > CELL_HOST_LIMIT:  # one rect per block, the diagonal still drawn per host
                out.append(f'<rect x="{col0}" y="{row0}" width="{cols}" height="{rows}"/>')
                if p == q:
                    out.extend(
                        f'<rect x="{r}" y="{r}" width="1" height="1" class="self" '
                        f'fill="{COLOURS["self"]}"/>'
                        for r in range(row0, row0 + rows)
                    )
            else:
                for r in range(row0, row0 + rows):
                    for col in range(col0, col0 + cols):
                        own = f' class="self" fill="{COLOURS["self"]}"' if r == col else ""
                        out.append(f'<rect x="{col}" y="{r}" width="{w}" height="{w}"{own}/>')
            out.append("</g>\n")
    out.append("</g>\n")
    # Group outlines on the diagonal.
    out.append('<g class="group-outlines" fill="none" stroke="#222" stroke-width="1">\n')
    for g in range(m.groups):
        members = [r for r in m.runs if m.group_of[r[0]] == g]
        if members:
            first, count = members[0][1], sum(r[2] for r in members)
            out.append(
                f'<rect x="{lay.grid_x + first * c:.1f}" y="{lay.grid_y + first * c:.1f}" '
                f'width="{count * c}" height="{count * c}"/>\n'
            )
    out.append("</g>\n")
    # Legend.
    ly = lay.height - LEGEND_HEIGHT + 8
    out.append('<g class="legend" font-size="12">\n')
    for k, (kind, label) in enumerate(LEGEND.items()):
        x = PAD + k * 190
        out.append(
            f'<rect x="{x}" y="{ly}" width="12" height="12" fill="{COLOURS[kind]}"/>'
            f'<text x="{x + 16}" y="{ly + 10}">{text(label)}</text>\n'
        )
    out.append("</g>\n</svg>\n")
    return "".join(out)


def cell_count(hosts: int) -> int:
    """Cells the matrix draws: every ordered pair of hosts, the diagonal included."""
    return hosts * hosts
