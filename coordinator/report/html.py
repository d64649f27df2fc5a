"""The audit as one self-contained HTML page: verdict, matrix, groups, baseline, losses.

No network: the CSS is inline, the matrix is inline SVG (`svg.render_svg`), and
the only script is inline and optional (without it every refused cell still has
its reasons as a tooltip; with it, hovering a cell names its two hosts).
Every string from hosts and dumps goes through `markup.text`.
"""

from __future__ import annotations

import json
from typing import Any

from .markup import host_label, text
from .svg import matrix_of, render_svg

CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:1.5em;color:#1b1b1b;background:#fff}
h1{font-size:1.5em;margin:0 0 .3em}h2{font-size:1.15em;margin:1.6em 0 .4em}
.verdict{padding:.8em 1em;border-radius:6px;color:#fff;font-size:1.15em}
.verdict.SAVE{background:#2e8b57}.verdict.SHUTDOWN{background:#c0392b}
table{border-collapse:collapse;margin:.3em 0}td,th{border:1px solid #ccc;padding:.2em .5em;
text-align:left;vertical-align:top}th{background:#f2f2f2}
.features{font-family:ui-monospace,monospace;font-size:.85em;max-width:60em}
.matrix-wrap{overflow:auto;max-width:100%;border:1px solid #ddd}
#cell-info{position:sticky;top:0;background:#fffbe6;border:1px solid #e6d88f;padding:.3em .6em;
white-space:pre-wrap;min-height:1.4em;font-size:.9em}
.muted{color:#666}
"""

SCRIPT = """
(function(){
  var data = JSON.parse(document.getElementById('matrix-hosts').textContent);
  var svg = document.querySelector('.matrix-wrap svg'); var info = document.getElementById('cell-info');
  if (!svg || !info) return; info.hidden = false;
  var cell = 1;
  svg.addEventListener('mousemove', function(ev){
    var t = ev.target; if (t.tagName !== 'rect' || !t.parentNode.classList.contains('block')) return;
    var col = Math.round(+t.getAttribute('x') / cell), row = Math.round(+t.getAttribute('y') / cell);
    var tip = t.parentNode.querySelector('title').textContent;
    var lines = tip.split('\\n'); var verdict = lines[0].slice(lines[0].lastIndexOf(': ') + 2);
    info.textContent = data[row] + ' \\u2192 ' + data[col] + ': ' + verdict +
      (lines.length > 1 ? '\\n' + lines.slice(1).join('\\n') : '');
  });
})();
"""


def _features(names: list[str]) -> str:
    return f'<span class="features">{text(" ".join(names))}</span>' if names else "none"


def _reasons(items: list[dict[str, Any]]) -> str:
    if not items:
        return ""
    rows = "".join(
        f"<li><b>{text(r.get('code', ''))}</b>: {text(r.get('detail') or '')}"
        + (f"<br>{_features(list(r.get('features') or []))}" if r.get("features") else "")
        + "</li>"
        for r in items
    )
    return f"<ul>{rows}</ul>"


def _summary(action: str, summary: str) -> str:
    """The audit's summary without the action it starts with (the banner says it)."""
    return summary.removeprefix(f"{action}: ")


def render_html(doc: dict[str, Any]) -> str:
    """The whole report page for an audit document (`AuditReport.to_json`)."""
    m = matrix_of(doc)
    action = str(doc["offline_action"])
    cluster = doc.get("cluster")
    title = f"cpucompat audit: {cluster}" if cluster else "cpucompat audit (offline)"
    hosts = doc["hosts"]
    parts: list[str] = [
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width,initial-scale=1">',
        f"<title>{text(title)}</title><style>{CSS}</style></head><body>",
        f"<h1>{text(title)}</h1>",
        f'<div class="verdict {text(action)}" id="verdict">Offline action: <b>{text(action)}</b>'
        f" \u2014 {text(_summary(action, str(doc.get('summary') or '')))}</div>",
        f'<p class="muted">{len(hosts)} host(s), {len(doc["distinct_profiles"])} distinct '
        f"processor(s); decided by: {text(doc.get('view') or 'feature classes')}</p>",
    ]
    parts += [
        '<h2 id="matrix">Compatibility matrix</h2>',
        '<p class="muted">Rows: where a VM booted; columns: where its saved state would be '
        "restored. Hosts are ordered by group (coloured strips, outlined blocks). "
        "Hover a cell for its reasons.</p>",
        '<div id="cell-info" aria-live="polite" hidden>Point at a cell: its two hosts and '
        "verdict appear here.</div>",
        f'<div class="matrix-wrap">{render_svg(doc, standalone=False)}</div>',
    ]

    if doc.get("reasons"):
        parts.append("<h2>Why</h2>" + _reasons(list(doc["reasons"])))
    if doc.get("warnings"):
        parts.append("<h2>Warnings</h2>" + _reasons(list(doc["warnings"])))

    parts.append(f"<h2>Groups ({len(doc['groups'])})</h2>")
    parts.append(
        '<p class="muted">Hosts that can restore each other\'s VMs in every direction.</p>'
    )
    rows = "".join(
        f"<tr><td>{g['index']}</td><td>{text(g.get('vendor') or '')}</td>"
        f"<td>{len(g['hosts'])}</td><td>{len(g['profiles'])}</td>"
        f"<td>{text(', '.join(host_label(h) for h in g['hosts']))}</td></tr>"
        for g in doc["groups"]
    )
    parts.append(
        "<table><tr><th>group</th><th>vendor</th><th>hosts</th><th>profiles</th>"
        f"<th>members</th></tr>{rows}</table>"
    )

    base = doc["baseline"]
    parts += [
        "<h2>Common baseline</h2><table>",
        f"<tr><th>vendor</th><td>{text(base.get('vendor') or 'mixed')}</td></tr>",
        f"<tr><th>nearest microarchitecture</th>"
        f"<td>{text(base.get('microarchitecture') or 'none')}</td></tr>",
        f"<tr><th>x86-64 level</th><td>{text(base.get('x86_64_level') or 'none')}</td></tr>",
        f"<tr><th>physical address bits</th><td>{text(base.get('physical_bits') or 'unknown')}"
        "</td></tr>",
        f"<tr><th>XSAVE components</th>"
        f"<td>{_features(list(base.get('xsave_components') or []))}</td></tr>",
        f"<tr><th>features ({len(base['features'])})</th>"
        f"<td>{_features(list(base['features']))}</td></tr></table>",
    ]

    removal = doc.get("best_removal") or {}
    parts.append("<h2>Best host to remove</h2>")
    if removal.get("host"):
        gained = list(removal.get("gained") or [])
        parts.append(
            f'<p id="best-removal">Removing <b>{text(host_label(removal["host"]))}</b> widens the '
            f"baseline by {len(gained)} feature(s); the offline action would then be "
            f"<b>{text(removal.get('offline_action_after') or '')}</b>.</p>"
            f"<p>{_features(gained)}</p>"
        )
    else:
        parts.append('<p id="best-removal">No single host\'s removal widens the baseline.</p>')

    parts.append(
        '<h2>Per-host feature loss</h2><p class="muted">Features each host offers that the '
        "common baseline lacks: what a VM booted there may use and lose if it must move.</p>"
    )
    rows_html = []
    for i in m.order:
        h = hosts[i]
        flags = " (stale)" if h.get("stale") else ""
        flags += " (replayed)" if h.get("replayed") and h.get("kind") == "host" else ""
        loses = list(h.get("loses") or [])
        rows_html.append(
            f"<tr><td>{text(host_label(h['name']))}{flags}</td><td>{text(h.get('kind') or '')}"
            f"</td><td>{int(h['group'])}</td><td>{text(h.get('vendor') or '')}</td>"
            f"<td>{text(h.get('brand') or '')}</td><td>{text(h.get('level') or '-')}</td>"
            f"<td>{len(loses)}</td><td>{_features(loses) if loses else ''}</td></tr>"
        )
    parts.append(
        "<table><tr><th>host</th><th>kind</th><th>group</th><th>vendor</th><th>processor</th>"
        "<th>level</th><th>loses</th><th>features lost</th></tr>" + "".join(rows_html) + "</table>"
    )
    names = [host_label(hosts[i]["name"]) for i in m.order]
    # JSON inside <script>: "<" escaped so no name can close the element.
    payload = json.dumps(names).replace("<", "\\u003c").replace("&", "\\u0026")
    parts += [
        f'<script type="application/json" id="matrix-hosts">{payload}</script>',
        f"<script>{SCRIPT}</script>",
        "</body></html>\n",
    ]
    return "".join(parts)
