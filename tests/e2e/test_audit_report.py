"""`audit --html` / `--svg`: the report renders in a real browser and says what `--json` says.

The HTML page is opened in headless Chromium (one launch per size: a screenshot
and the DOM after load); the SVG is parsed as XML. In both, every host pair is
one cell placed at its hosts' positions, and each refused cell's tooltip gives
exactly the reasons `audit --json` gives for that pair. Tests that need Chromium
skip only when no Chromium binary can be found (`bash .ci/run` installs it).
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from cpucompat.agent.decode import decode
from cpucompat.agent.dumps import load_dump
from cpucompat.agent.profile import Profile
from cpucompat.coordinator.domain.audit import HostInput, audit
from cpucompat.coordinator.report.html import render_html
from cpucompat.coordinator.report.svg import CELL_HOST_LIMIT, TITLE_FEATURES, render_svg
from tests.support.daemons import Daemon, run_cli, start_agent, start_coordinator, wait_until
from tests.support.paths import DEV_DUMP, FIXTURES
from tests.support.png_pixels import png_colours, png_size
from tests.support.shared import shared_dumps_or_skip

SVG = "{http://www.w3.org/2000/svg}"
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
WINDOW = (800, 700)
REFUSED_RGB = bytes.fromhex("d64545")
SELF_RGB = bytes.fromhex("9a9a9a")

AMD = DEV_DUMP
INTEL = FIXTURES / "processors" / "intel-skylake-leaf2-edited.cpuid-r.txt"
FIXTURE_DUMPS = [
    *sorted((FIXTURES / "processors").glob("*.cpuid-r.txt")),
    FIXTURES / "processors" / "dev-amd-epyc-kvm-guest-phys-40-edited.json",
    FIXTURES / "dumps" / "aida-sections.txt",
    FIXTURES / "dumps" / "cpuid-r-single.txt",
    FIXTURES / "dumps" / "libcpuid-single.txt",
    FIXTURES / "dumps" / "spr-avx10_1-edited.txt",
    FIXTURES / "dumps" / "spr-avx10_2-edited.txt",
]
HOSTILE = "<img src=x onerror=\"document.title='pwned'\">"


# ---- what the drawing holds ---------------------------------------------------------------


@dataclass
class Block:
    source: int
    target: int
    kind: str
    title: str = ""
    cells: list[tuple[int, int, bool]] = field(default_factory=list)  # x, y, is the diagonal


@dataclass
class Drawn:
    rows: list[str] = field(default_factory=list)  # full host names, top to bottom
    cols: list[str] = field(default_factory=list)
    blocks: list[Block] = field(default_factory=list)


def _classes(value: str | None) -> list[str]:
    return (value or "").split()


def _block_of(attrs: dict[str, str | None]) -> Block:
    kinds = [c for c in _classes(attrs.get("class")) if c != "block"]
    return Block(
        int(attrs["data-source-profile"] or -1), int(attrs["data-target-profile"] or -1), kinds[0]
    )


def drawn_from_svg(svg: str) -> Drawn:
    """The matrix as ElementTree reads the SVG file."""
    root = ET.fromstring(svg)
    drawn = Drawn()
    for g in root.iter(f"{SVG}g"):
        cls = _classes(g.get("class"))
        if "row-labels" in cls or "col-labels" in cls:
            names = [t.findtext(f"{SVG}title") or "" for t in g.findall(f"{SVG}text")]
            if "row-labels" in cls:
                drawn.rows = names
            else:
                drawn.cols = names
        elif "block" in cls:
            block = _block_of(dict(g.attrib))
            block.title = g.findtext(f"{SVG}title") or ""
            for rect in g.findall(f"{SVG}rect"):
                block.cells.append(
                    (
                        int(rect.get("x", "-1")),
                        int(rect.get("y", "-1")),
                        rect.get("class") == "self",
                    )
                )
            drawn.blocks.append(block)
    return drawn


class DomReader(HTMLParser):
    """The matrix, the scripts and the page's facts as Chromium's DOM holds them."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.drawn = Drawn()
        self.stack: list[tuple[str, dict[str, str | None]]] = []  # inside the matrix's <svg>
        self.text: list[str] = []
        self.tags: dict[str, int] = {}
        self.page_title = ""
        self.verdict = ""
        self.all_text: list[str] = []
        self._in_head_title = False
        self._in_verdict = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        self.tags[tag] = self.tags.get(tag, 0) + 1
        if tag == "svg" and "matrix" in _classes(a.get("class")):
            self.stack = [(tag, a)]
            return
        if tag == "title" and not self.stack:
            self._in_head_title = True
        if a.get("id") == "verdict":
            self._in_verdict = True
        if not self.stack:
            return
        if tag == "g" and "block" in _classes(a.get("class")):
            self.drawn.blocks.append(_block_of(a))
        if tag == "rect" and "block" in _classes(self.stack[-1][1].get("class")):
            self.drawn.blocks[-1].cells.append(
                (int(a.get("x") or -1), int(a.get("y") or -1), a.get("class") == "self")
            )
        if tag == "title":
            self.text = []
        self.stack.append((tag, a))

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_head_title = False
        if tag == "div":
            self._in_verdict = False
        if not self.stack:
            return
        if tag == "title" and len(self.stack) >= 3:
            text = "".join(self.text)
            parent, grand = self.stack[-2], self.stack[-3]
            if parent[0] == "g" and "block" in _classes(parent[1].get("class")):
                self.drawn.blocks[-1].title = text
            elif parent[0] == "text" and "row-labels" in _classes(grand[1].get("class")):
                self.drawn.rows.append(text)
            elif parent[0] == "text" and "col-labels" in _classes(grand[1].get("class")):
                self.drawn.cols.append(text)
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.all_text.append(data)
        if self.stack and self.stack[-1][0] == "title":
            self.text.append(data)
        if self._in_head_title:
            self.page_title += data
        if self._in_verdict:
            self.verdict += data


def read_dom(dom: str) -> DomReader:
    reader = DomReader()
    reader.feed(dom)
    reader.close()
    return reader


# ---- what the drawing must say ------------------------------------------------------------


def title_reasons(title: str) -> list[tuple[str, str, list[str]]]:
    """(code, detail, features shown) per reason in a refused block's tooltip."""
    out: list[tuple[str, str, list[str]]] = []
    for line in title.split("\n")[1:]:
        if line.startswith("  "):
            shown = line.strip().split(" \u2026 and ")[0]
            out[-1][2].extend(shown.split())
        else:
            code, _, detail = line.partition(": ")
            out.append((code, detail, []))
    return out


def expected_reasons(reasons: list[dict[str, Any]]) -> list[tuple[str, str, list[str]]]:
    out = []
    for r in reasons:
        detail = r["detail"] if len(r["detail"]) <= 400 else r["detail"][:399] + "\u2026"
        out.append((r["code"], detail, list(r["features"][:TITLE_FEATURES])))
    return out


def assert_matrix_matches(drawn: Drawn, doc: dict[str, Any]) -> int:
    """Every host pair drawn once at its hosts' places, as `--json` judges it; refused count."""
    names = [h["name"] for h in doc["hosts"]]
    n = len(names)
    profile_of = {h["name"]: h["profile"] for h in doc["hosts"]}
    compatible = doc["matrix"]["compatible"]
    assert sorted(drawn.rows) == sorted(names), "row labels are not the audited hosts"
    assert drawn.cols == drawn.rows, "columns are not in the rows' order"
    # Hosts of one group are drawn together.
    groups = [doc["distinct_profiles"][profile_of[name]]["group"] for name in drawn.rows]
    assert groups == sorted(groups)

    cells = [(x, y) for b in drawn.blocks for x, y, _ in b.cells]
    assert len(cells) == n * n == len(set(cells)), "not one cell per ordered host pair"
    diagonal = sorted((x, y) for b in drawn.blocks for x, y, own in b.cells if own)
    assert diagonal == [(i, i) for i in range(n)]

    refused = 0
    blocks = {(b.source, b.target): b for b in drawn.blocks}
    assert len(blocks) == len(drawn.blocks)
    for b in drawn.blocks:
        assert (b.kind == "refused") == (not compatible[b.source][b.target])
        for x, y, own in b.cells:
            assert profile_of[drawn.rows[y]] == b.source and profile_of[drawn.rows[x]] == b.target
            refused += b.kind == "refused" and not own
    assert refused == sum(
        1 for a in names for t in names if a != t and not compatible[profile_of[a]][profile_of[t]]
    )
    by_hosts = doc["pairs_mode"] == "hosts"
    if by_hosts:
        assert refused == len(doc["blocking_pairs"])
    for pair in doc["blocking_pairs"]:
        src = pair["source"] if by_hosts else pair["source_example"]
        tgt = pair["target"] if by_hosts else pair["target_example"]
        block = blocks[(profile_of[src], profile_of[tgt])]
        assert block.kind == "refused"
        assert block.title.split("\n")[0].endswith(": REFUSED")
        assert title_reasons(block.title) == expected_reasons(pair["reasons"]), block.title
    return refused


# ---- Chromium -----------------------------------------------------------------------------


def chromium() -> str:
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    pytest.skip(
        f"no Chromium binary found (looked for {', '.join(CHROMIUM_NAMES)}): install the "
        "Debian package `chromium` (`bash .ci/run` does)"
    )


def open_in_chromium(page: Path, folder: Path) -> tuple[bytes, str, float]:
    """One headless launch: a screenshot of the page's top (verdict and matrix) and the DOM."""
    shot = folder / "shot.png"
    started = time.monotonic()
    proc = subprocess.run(
        [
            chromium(),
            "--headless",
            "--no-sandbox",  # Chromium refuses to run as root without it
            "--disable-gpu",
            "--hide-scrollbars",
            f"--user-data-dir={folder / 'chromium-profile'}",
            f"--screenshot={shot}",
            "--dump-dom",
            f"--window-size={WINDOW[0]},{WINDOW[1]}",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
    )
    seconds = time.monotonic() - started
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert shot.is_file(), f"Chromium wrote no screenshot: {proc.stderr[-2000:]}"
    return shot.read_bytes(), proc.stdout, seconds


def assert_page_renders(page: Path, doc: dict[str, Any], folder: Path) -> DomReader:
    png, dom, seconds = open_in_chromium(page, folder)
    print(f"{doc['host_count']} hosts: {page.stat().st_size} bytes, Chromium {seconds:.1f} s")
    assert png_size(png) == WINDOW
    colours = png_colours(png)
    assert len(colours) > 20, "the screenshot is (nearly) blank"
    assert SELF_RGB in colours, "no matrix cell drawn in the screenshot"
    if doc["blocking_pairs"]:
        assert REFUSED_RGB in colours, "no refused cell drawn in the screenshot"
    reader = read_dom(dom)
    assert_matrix_matches(reader.drawn, doc)
    assert doc["offline_action"] in reader.verdict
    # Only the page's own two scripts (the hosts' names as JSON, the optional hover readout).
    assert reader.tags.get("script") == 2
    assert "img" not in reader.tags and "pwned" not in reader.page_title
    return reader


def run_audit(*args: str) -> tuple[dict[str, Any], int]:
    proc = run_cli("audit", *args, "--json")
    assert proc.returncode in (0, 3), proc.stderr
    return json.loads(proc.stdout), proc.returncode


def named_copies(folder: Path, sources: list[Path], count: int, prefix: str = "node") -> list[str]:
    """``count`` dump: arguments, the sources repeated under their own names (symlinks)."""
    folder.mkdir(exist_ok=True)
    args = []
    for i in range(count):
        source = sources[i % len(sources)]
        link = folder / f"{prefix}{i:03d}-{source.name}"
        link.symlink_to(source)
        args.append(f"dump:{link}")
    return args


# ---- the tests ----------------------------------------------------------------------------


def test_two_hosts_render_with_hostile_names_kept_as_text(tmp_path: Path) -> None:
    hosts = [tmp_path / f"web{HOSTILE}.txt", tmp_path / "db<script>alert(1)<.txt"]
    hosts[0].symlink_to(AMD)
    hosts[1].symlink_to(INTEL)
    page, svg = tmp_path / "audit.html", tmp_path / "matrix.svg"
    doc, code = run_audit(*(f"dump:{h}" for h in hosts), "--html", str(page), "--svg", str(svg))
    assert code == 3 and doc["offline_action"] == "SHUTDOWN"  # a "no" still writes the report
    reader = assert_page_renders(page, doc, tmp_path)
    assert sorted(reader.drawn.rows) == sorted(f"dump:{h}" for h in hosts)
    assert assert_matrix_matches(drawn_from_svg(svg.read_text()), doc) == 2
    assert not list(tmp_path.glob(".*.tmp")), "a temporary file was left behind"


def test_thirty_hosts_from_fixtures_render(tmp_path: Path) -> None:
    args = named_copies(tmp_path / "dumps", FIXTURE_DUMPS, 30)
    page, svg = tmp_path / "audit.html", tmp_path / "matrix.svg"
    doc, _ = run_audit(*args, "--html", str(page), "--svg", str(svg))
    assert doc["host_count"] == 30 and doc["pairs_mode"] == "hosts"
    assert len(doc["groups"]) > 1 and doc["blocking_pairs"]  # refused and accepted cells
    refused = assert_matrix_matches(drawn_from_svg(svg.read_text()), doc)
    assert 0 < refused < 30 * 29
    reader = assert_page_renders(page, doc, tmp_path)
    assert reader.drawn.rows == drawn_from_svg(svg.read_text()).rows


def _decoded(paths: list[Path]) -> list[tuple[str, Profile]]:
    return [(p.name, decode(load_dump(p))) for p in paths]


@pytest.mark.shared
def test_three_hundred_hosts_render(tmp_path: Path) -> None:
    shared = sorted(shared_dumps_or_skip().glob("*.txt"))
    sources = _decoded(shared) + _decoded(FIXTURE_DUMPS)
    # As the audit tests build large audits: real profiles repeated under their own names.
    hosts = [
        HostInput(f"rack{i // 40:02d}-node{i:03d}-{name}", profile, kind="dump")
        for i, (name, profile) in ((i, sources[i % len(sources)]) for i in range(300))
    ]
    doc = audit(hosts).to_json()  # what `audit --json` prints for these hosts
    assert doc["pairs_mode"] == "profiles" and doc["blocking_pairs"]
    page, svg = tmp_path / "audit.html", tmp_path / "matrix.svg"
    page.write_text(render_html(doc))
    svg.write_text(render_svg(doc))
    print(f"300 hosts: HTML {page.stat().st_size} bytes, SVG {svg.stat().st_size} bytes")
    assert page.stat().st_size < 8_000_000
    assert_matrix_matches(drawn_from_svg(svg.read_text()), doc)
    assert_page_renders(page, doc, tmp_path)


def test_above_the_cell_limit_each_profile_pair_is_one_rectangle() -> None:
    """Beyond CELL_HOST_LIMIT hosts the size follows distinct profiles, the picture stays."""
    zen3 = FIXTURES / "processors" / "amd-zen3-x3d-l3-edited.cpuid-r.txt"
    profiles = [decode(load_dump(p)) for p in (AMD, INTEL, zen3)]
    n = CELL_HOST_LIMIT + 100
    doc = audit([HostInput(f"hv-{i:04d}", profiles[i % 3]) for i in range(n)]).to_json()
    svg = render_svg(doc)
    assert len(svg) < 1_000_000
    root = ET.fromstring(svg)
    rows = drawn_from_svg(svg).rows
    profile_of = {h["name"]: h["profile"] for h in doc["hosts"]}
    area, diagonal, refused = 0, 0, set()
    for g in root.iter(f"{SVG}g"):
        if "block" not in _classes(g.get("class")):
            continue
        block = _block_of(dict(g.attrib))
        for rect in g.findall(f"{SVG}rect"):
            x, y, w, h = (int(rect.get(k, "0")) for k in ("x", "y", "width", "height"))
            if rect.get("class") == "self":
                diagonal += x == y
                continue
            area += w * h
            assert {profile_of[rows[i]] for i in range(y, y + h)} == {block.source}
            assert {profile_of[rows[i]] for i in range(x, x + w)} == {block.target}
        if block.kind == "refused":
            refused.add((block.source, block.target))
            title = g.findtext(f"{SVG}title") or ""
            pair = next(
                p
                for p in doc["blocking_pairs"]
                if (profile_of[p["source_example"]], profile_of[p["target_example"]])
                == (block.source, block.target)
            )
            assert title_reasons(title) == expected_reasons(pair["reasons"])
    assert area == n * n and diagonal == n
    assert len(refused) == len(doc["blocking_pairs"]) > 0


def test_hostile_brand_and_names_stay_text() -> None:
    """A brand or name holding markup or control bytes is shown, never run or parsed."""
    base = decode(load_dump(AMD))
    brand = "<script>alert(1)</script>&amp;\x1b[31m\x00 ]]> </svg>"
    evil = dataclasses.replace(base, brand=brand)
    other = decode(load_dump(INTEL))
    doc = audit(
        [HostInput("</title><script>alert(2)</script>", evil), HostInput("ok-1", other)]
    ).to_json()
    svg = render_svg(doc)
    drawn = drawn_from_svg(svg)  # parses as XML despite the control bytes
    assert "</title><script>alert(2)</script>" in drawn.rows
    assert_matrix_matches(drawn, doc)
    page = render_html(doc)
    reader = read_dom(page)
    assert reader.tags.get("script") == 2 and reader.tags.get("svg") == 1
    shown = "".join(reader.all_text)
    assert "<script>alert(1)</script>&amp;\ufffd[31m\ufffd ]]> </svg>" in shown  # the brand
    assert "</title><script>alert(2)</script>" in shown  # the name, in the host table
    assert "\x00" not in page and "\x1b" not in page


def test_online_audit_writes_the_same_report(tmp_path: Path) -> None:
    """Through a coordinator (`--cluster`) the files come from the same document as offline."""
    coordinator = start_coordinator(tmp_path, "--allow-replayed")
    agents: list[Daemon] = []
    page, svg = tmp_path / "online.html", tmp_path / "online.svg"
    try:
        address = coordinator.address
        for host, dump in (("amd-1", AMD), ("intel-1", INTEL)):
            agents.append(
                start_agent(tmp_path, address, host, "--replay-dump", str(dump), cluster="c")
            )

        def registered() -> bool:
            listed = run_cli("hosts", "--json", "--coordinator", address)
            return listed.returncode == 0 and len(json.loads(listed.stdout)) == 2

        wait_until(registered, what="both replayed hosts registered")
        doc, code = run_audit(
            "--cluster", "c", "--coordinator", address, "--html", str(page), "--svg", str(svg)
        )
    finally:
        for agent in agents:
            agent.stop()
        coordinator.stop()
    assert code == 3 and doc["cluster"] == "c"
    drawn = drawn_from_svg(svg.read_text())
    assert sorted(drawn.rows) == ["amd-1", "intel-1"]
    assert assert_matrix_matches(drawn, doc) == 2
    html = page.read_text()
    assert "cpucompat audit: c" in html and drawn_from_svg(svg.read_text()) == drawn
    assert read_dom(html).drawn == drawn


def test_unwritable_report_path_is_a_usage_error(tmp_path: Path) -> None:
    target = tmp_path / "missing-folder" / "audit.html"
    proc = run_cli("audit", f"dump:{AMD}", f"dump:{INTEL}", "--html", str(target))
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "--html" in lines[0] and str(target) in lines[0]
    assert not target.parent.exists()
