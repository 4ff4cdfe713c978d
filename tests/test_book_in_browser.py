"""The built book, opened page by page in headless Chromium, as a reader (offline) would see it.

Needs Debian's Chromium (``apt-get install -y chromium``) and PyPI's ``playwright`` (no browser
download: Playwright drives /usr/bin/chromium). Without Chromium the module is skipped, except
when ``CI`` is set, where a missing browser is an error.

The site is the one in ``book/_build/html``. If it is missing or older than its sources, the
session builds it first with the book's own command (``jupyter-book build -W -n --keep-going
--all book/``), so a stale site is never tested. The pages are served from 127.0.0.1 and every
request to another host is aborted: the book must work in a classroom without internet.

Screenshots of the chapter pages go to ``book/_build/screenshots/`` (desktop and phone width),
and the time the browser part took to ``book/_build/screenshots/timing.txt``.
"""
from __future__ import annotations

import functools
import http.server
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urljoin, urlsplit

import pytest

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / "book"
SITE = BOOK / "_build" / "html"
SCREENSHOTS = BOOK / "_build" / "screenshots"
NOTEBOOKS = ROOT / "notebooks"
CHROMIUM = Path(os.environ.get("I2I_CHROMIUM", "/usr/bin/chromium"))
# Without the background-networking flags, Chromium's own connections (to Google's hosts) are
# refused by a closed network, many at a time; the rest make headless Chromium quiet and lean.
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
COLAB = "https://colab.research.google.com/github/i2icourse/i2icourse/blob/main/"
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}

# Console messages that are not errors of the book, each with the reason it is allowed. THE ONLY
# PLACE where console output is excused: (regular expression, reason).
BENIGN_CONSOLE: list[tuple[str, str]] = [
    # (none needed so far: every page loads without a console error, offline)
]

# A term that occurs in exactly one chapter, to find that chapter through the site's search.
SEARCH_TERMS = {
    "00_measuring_image_quality": "bisection",
    "04_pix2pix": "PatchGAN",
}

# ------------------------------------------------------------------ the browser, or a skip/fail
try:
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import sync_playwright
except ImportError:  # pragma: no cover - depends on the machine
    sync_playwright = None

_MISSING = None
if sync_playwright is None:
    _MISSING = "the Python package playwright is not installed (pip install -e '.[test]')"
elif not CHROMIUM.exists():
    _MISSING = (f"Chromium is not installed at {CHROMIUM}: install Debian's package with "
                "`apt-get install -y chromium` (Playwright drives it; no browser download needed)")
if _MISSING:
    if os.environ.get("CI"):
        pytest.fail(f"browser test cannot run in CI: {_MISSING}", pytrace=False)
    pytest.skip(f"browser test skipped: {_MISSING}", allow_module_level=True)


# ------------------------------------------------------------------ the site
def _newest_source_mtime() -> float:
    newest = 0.0
    for top in (BOOK, NOTEBOOKS):
        for folder, dirs, files in os.walk(top):
            dirs[:] = [d for d in dirs if not d.startswith((".", "_build")) and d != "__pycache__"]
            for name in files:
                newest = max(newest, (Path(folder) / name).stat().st_mtime)
    return newest


def _jupyter_book() -> str:
    candidate = Path(sys.executable).with_name("jupyter-book")
    return str(candidate) if candidate.exists() else (shutil.which("jupyter-book") or "jupyter-book")


@pytest.fixture(scope="session")
def site() -> Path:
    """book/_build/html, built now if missing or older than book/ and notebooks/."""
    index = SITE / "index.html"
    if not index.exists() or index.stat().st_mtime < _newest_source_mtime():
        command = [_jupyter_book(), "build", "-W", "-n", "--keep-going", "--all", str(BOOK)]
        result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
        if result.returncode != 0:
            pytest.fail(f"building the book failed ({' '.join(command)}):\n"
                        f"{result.stdout[-4000:]}\n{result.stderr[-4000:]}", pytrace=False)
    return SITE


@pytest.fixture(scope="session")
def server(site: Path):
    """The site served over HTTP on 127.0.0.1 (a free port), in a thread."""

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):  # keep pytest's output clean
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(site)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()
    httpd.server_close()


def _pages(site: Path) -> list[str]:
    return sorted(p.relative_to(site).as_posix() for p in site.rglob("*.html")
                  if not p.relative_to(site).parts[0].startswith("_"))


def _toc_chapters() -> list[str]:
    """Chapter names (NN_name) listed in book/_toc.yml, in order."""
    return re.findall(r"^\s*-\s*file:\s*notebooks/(\d\d_[\w-]+)\s*$", (BOOK / "_toc.yml").read_text(), re.M)


class _Anchors(HTMLParser):
    def __init__(self):
        super().__init__()
        self.ids: set[str] = set()

    def handle_starttag(self, tag, attrs):
        for key, value in attrs:
            if key == "id" or (tag == "a" and key == "name"):
                self.ids.add(value or "")


@functools.lru_cache(maxsize=None)
def _static_ids(path: Path) -> frozenset[str]:
    parser = _Anchors()
    parser.feed(path.read_text(encoding="utf-8", errors="replace"))
    return frozenset(parser.ids)


# ------------------------------------------------------------------ one visit of every page
@dataclass
class Visit:
    page: str
    status: int | None = None
    console_errors: list[str] = field(default_factory=list)
    failed_requests: list[str] = field(default_factory=list)  # of the site itself
    external_requests: list[str] = field(default_factory=list)  # blocked: the book must work offline
    broken_images: list[str] = field(default_factory=list)
    links: list[str] = field(default_factory=list)
    ids: set[str] = field(default_factory=set)
    math: dict = field(default_factory=dict)
    widgets: dict = field(default_factory=dict)
    colab_links: list[str] = field(default_factory=list)
    overflow: dict = field(default_factory=dict)


_IMAGES_JS = """async () => Promise.all(Array.from(document.images).map(async img => {
    img.loading = 'eager';
    try { await img.decode(); } catch (e) {}
    return [img.getAttribute('src') || '', img.naturalWidth];
}))"""

_MATH_JS = """async () => {
    if (window.MathJax && MathJax.startup && MathJax.startup.promise) { await MathJax.startup.promise; }
    const maths = Array.from(document.querySelectorAll('.math'));
    return {
        loaded: !!(window.MathJax && MathJax.startup && MathJax.startup.document),
        elements: maths.length,
        typeset: maths.filter(m => m.querySelector('mjx-container')).length,
        containers: document.querySelectorAll('mjx-container').length,
        errors: Array.from(document.querySelectorAll('mjx-merror')).map(e => e.getAttribute('data-mjx-error') || e.textContent),
        raw: maths.filter(m => !m.querySelector('mjx-container')).slice(0, 3).map(m => m.textContent.slice(0, 80)),
    };
}"""

_WIDGETS_JS = """() => {
    const text = document.body.innerText;
    const empty = Array.from(document.querySelectorAll('.cell_output')).filter(o =>
        o.innerText.trim() === '' && !o.querySelector('img, svg, canvas, video, iframe, table, mjx-container'));
    return {
        loading_text: /Loading widget/i.test(text),
        unrendered_views: document.querySelectorAll('script[type="application/vnd.jupyter.widget-view+json"]').length,
        empty_outputs: empty.length,
        fallbacks: document.querySelectorAll('.i2i-widget-static').length,
    };
}"""

_OVERFLOW_JS = """() => {
    const width = window.innerWidth;
    const scroll = document.scrollingElement.scrollWidth;
    const culprits = [];
    if (scroll > width + 1) {
        const inScroller = el => {
            for (let p = el.parentElement; p && p !== document.body; p = p.parentElement) {
                if (getComputedStyle(p).overflowX !== 'visible') return true;
            }
            return false;
        };
        for (const el of document.body.querySelectorAll('*')) {
            const r = el.getBoundingClientRect();
            if (r.right > width + 1 && r.width > 0 && !inScroller(el)) {
                culprits.push(`${el.tagName.toLowerCase()}.${(el.className || '').toString().split(' ').join('.')} right=${Math.round(r.right)}`);
                if (culprits.length >= 5) break;
            }
        }
    }
    return {width, scroll, culprits};
}"""


def _visit(context, base: str, page: str, *, screenshot: Path | None = None, checks: bool = True) -> Visit:
    visit = Visit(page)
    tab = context.new_page()

    def on_console(message):
        if message.type == "error":
            visit.console_errors.append(message.text)

    def on_response(response):
        if response.url.startswith(base) and response.status >= 400:
            visit.failed_requests.append(f"{response.status} {response.url[len(base) - 1:]}")

    def on_failed(request):
        if request.url.startswith(base):
            visit.failed_requests.append(f"{request.failure} {request.url[len(base) - 1:]}")

    tab.on("console", on_console)
    tab.on("pageerror", lambda error: visit.console_errors.append(f"uncaught: {error}"))
    tab.on("response", on_response)
    tab.on("requestfailed", on_failed)
    try:
        response = tab.goto(base + page, wait_until="load")
        visit.status = response.status if response else None
        tab.wait_for_load_state("networkidle")
        visit.math = tab.evaluate(_MATH_JS)
        if checks:
            visit.broken_images = [src[:100] for src, width in tab.evaluate(_IMAGES_JS) if width == 0]
            visit.links = tab.eval_on_selector_all("a[href]", "els => els.map(a => a.href)")
            visit.ids = set(tab.eval_on_selector_all("[id], a[name]", "els => els.map(e => e.id || e.name)"))
            visit.widgets = tab.evaluate(_WIDGETS_JS)
            visit.colab_links = sorted(set(u for u in visit.links if u.startswith("https://colab.research.google.com/")))
        visit.overflow = tab.evaluate(_OVERFLOW_JS)
        if screenshot is not None:
            screenshot.parent.mkdir(parents=True, exist_ok=True)
            tab.screenshot(path=str(screenshot), full_page=True)
    finally:
        tab.close()
    return visit


@pytest.fixture(scope="session")
def visits(site: Path, server: str) -> dict[str, dict[str, Visit]]:
    """Every page visited once at desktop width and once at phone width, offline."""
    pages = _pages(site)
    chapters = set(_toc_chapters())
    external: list[str] = []
    started = time.perf_counter()
    result: dict[str, dict[str, Visit]] = {"desktop": {}, "phone": {}}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            for name, viewport in (("desktop", DESKTOP), ("phone", PHONE)):
                context = browser.new_context(viewport=viewport, service_workers="block")
                # Waits, not speed checks: beside a notebook kernel on a 2-core CI machine, a chapter page
                # can need longer than playwright's default 30 s to go network-idle.
                context.set_default_timeout(180_000)

                def route(r, request):
                    if request.url.startswith(server) or request.url.startswith("data:"):
                        r.continue_()
                    else:
                        external.append(request.url)
                        r.abort()

                context.route("**/*", route)
                for page in pages:
                    stem = Path(page).stem
                    shot = SCREENSHOTS / f"{stem}-{name}.png" if stem in chapters else None
                    visit = _visit(context, server, page, screenshot=shot, checks=(name == "desktop"))
                    visit.external_requests = external[:]
                    external.clear()
                    result[name][page] = visit
                context.close()
        finally:
            browser.close()
    elapsed = time.perf_counter() - started
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    (SCREENSHOTS / "timing.txt").write_text(
        f"browser part: {elapsed:.1f} s for {len(pages)} pages x 2 viewports (Chromium at {CHROMIUM})\n")
    print(f"\nbrowser part of the book test: {elapsed:.1f} s ({len(pages)} pages x 2 viewports)")
    return result


def _report(problems: dict[str, list]) -> str:
    return "\n".join(f"  {page}: {items}" for page, items in problems.items() if items)


def _console_errors(visit: Visit) -> list[str]:
    return [m for m in visit.console_errors if not any(re.search(rx, m) for rx, _ in BENIGN_CONSOLE)]


# ------------------------------------------------------------------ the checks
def test_every_page_loads(visits):
    pages = visits["desktop"]
    assert {"index.html", "intro.html", "search.html"} <= set(pages), sorted(pages)
    bad = {page: [v.status] for page, v in pages.items() if v.status != 200}
    assert not bad, "pages that did not load:\n" + _report(bad)


def test_no_console_errors(visits):
    bad = {f"{view}:{page}": _console_errors(v) for view, pages in visits.items() for page, v in pages.items()}
    assert not any(bad.values()), (
        "console errors (excuse a benign one, with its reason, in BENIGN_CONSOLE):\n" + _report(bad))


def test_no_failed_request_for_a_file_of_the_site(visits):
    bad = {f"{view}:{page}": v.failed_requests for view, pages in visits.items() for page, v in pages.items()}
    assert not any(bad.values()), "requests for the site's own files that failed:\n" + _report(bad)


def test_the_site_requests_nothing_from_other_hosts(visits):
    bad = {f"{view}:{page}": v.external_requests for view, pages in visits.items() for page, v in pages.items()}
    assert not any(bad.values()), ("the pages load files from the internet, which a classroom "
                                   "without internet lacks:\n" + _report(bad))


def test_every_image_decodes(visits):
    bad = {page: v.broken_images for page, v in visits["desktop"].items()}
    assert not any(bad.values()), "images that do not decode (naturalWidth 0):\n" + _report(bad)


def test_every_internal_link_resolves(visits, server, site):
    problems: dict[str, list[str]] = {}
    for page, visit in visits["desktop"].items():
        for link in visit.links:
            if not link.startswith(server):
                continue
            parts = urlsplit(link)
            path = unquote(parts.path[len(urlsplit(server).path):]) or "index.html"
            target = site / path
            if target.is_dir():
                target = target / "index.html"
            if not target.is_file():
                problems.setdefault(page, []).append(f"{link[len(server) - 1:]} (no such file)")
                continue
            if parts.fragment:
                fragment = unquote(parts.fragment)
                same_page = target == site / page
                ids = visit.ids | _static_ids(target) if same_page else _static_ids(target)
                if fragment not in ids:
                    problems.setdefault(page, []).append(f"{link[len(server) - 1:]} (no anchor #{fragment})")
    assert not problems, "internal links that lead nowhere:\n" + _report(problems)


def test_math_is_typeset_offline(visits):
    chapters = [f"notebooks/{c}.html" for c in _toc_chapters()]
    pages = visits["desktop"]
    assert "notebooks/00_measuring_image_quality.html" in chapters
    bad = {}
    for page, visit in pages.items():
        math = visit.math
        if math.get("elements") and (math["typeset"] < math["elements"] or math["errors"]):
            bad[page] = [math]
    assert not bad, "equations left untypeset, or with TeX errors (offline MathJax):\n" + _report(bad)
    first = pages["notebooks/00_measuring_image_quality.html"].math
    assert first["loaded"] and first["containers"] > 0, f"chapter 0 shows no typeset equation: {first}"


def test_search_finds_a_chapter_by_a_term_of_its_own(site, server):
    chapters = [c for c in _toc_chapters() if c in SEARCH_TERMS]
    assert chapters, f"no chapter with a search term in SEARCH_TERMS among {_toc_chapters()}"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            tab = browser.new_page()
            tab.set_default_timeout(180_000)  # a wait, not a speed check (see `visits`)
            tab.route("**/*", lambda r, q: r.continue_() if q.url.startswith(server) else r.abort())
            for chapter in chapters:
                term = SEARCH_TERMS[chapter]
                source = (NOTEBOOKS / f"{chapter}.ipynb").read_text(encoding="utf-8")
                assert term.lower() in source.lower(), (
                    f"the search term {term!r} of {chapter} no longer occurs in the notebook: "
                    "choose another in SEARCH_TERMS")
                tab.goto(f"{server}search.html?q={term}", wait_until="load")
                tab.wait_for_function(
                    "() => { const s = document.querySelector('#search-results .search-summary, "
                    "#search-results p'); return s && /found|did not match/i.test(s.textContent); }",
                    timeout=60_000)
                hits = tab.eval_on_selector_all("#search-results ul.search li a", "els => els.map(a => a.href)")
                pages = sorted({urlsplit(h).path.rsplit("/", 1)[-1] for h in hits})
                assert f"{chapter}.html" in pages, f"searching {term!r} finds {pages}, not {chapter}"
        finally:
            browser.close()


def test_chapter_pages_open_their_notebooks_in_colab(visits):
    chapters = _toc_chapters()
    assert chapters, "the toc lists no chapter"
    problems = {}
    for chapter in chapters:
        visit = visits["desktop"][f"notebooks/{chapter}.html"]
        expected = {COLAB + f"notebooks/{chapter}.ipynb"}
        student = NOTEBOOKS / "student" / f"{chapter}.ipynb"
        if student.exists():
            expected.add(COLAB + f"notebooks/student/{chapter}.ipynb")
        found = set(visit.colab_links)
        wrong = [f"missing {u}" for u in sorted(expected - found)] + [f"unexpected {u}" for u in sorted(found - expected)]
        for url in found:
            if url.startswith(COLAB) and not (ROOT / url[len(COLAB):]).is_file():
                wrong.append(f"{url} names no notebook of the repository")
        if wrong:
            problems[chapter] = wrong
    assert not problems, "Colab links of the chapter pages:\n" + _report(problems)


def test_text_fits_a_phone_screen(visits):
    bad = {page: [v.overflow] for page, v in visits["phone"].items()
           if v.overflow["scroll"] > v.overflow["width"] + 1}
    assert not bad, f"pages wider than a {PHONE['width']}-px phone screen (fix book/_static/custom.css):\n" + _report(bad)


def test_no_widget_is_left_loading_or_empty(visits):
    bad = {page: [v.widgets] for page, v in visits["desktop"].items()
           if v.widgets.get("loading_text") or v.widgets.get("unrendered_views") or v.widgets.get("empty_outputs")}
    assert not bad, ("widget outputs that show nothing in the book (store the widget state, or add a static "
                     "output to the cell):\n" + _report(bad))


def test_every_chapter_has_screenshots(visits):
    missing = [f"{c}-{view}.png" for c in _toc_chapters() for view in ("desktop", "phone")
               if not (SCREENSHOTS / f"{c}-{view}.png").is_file()]
    assert not missing, f"screenshots not written to {SCREENSHOTS}: {missing}"
