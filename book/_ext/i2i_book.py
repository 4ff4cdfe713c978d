"""i2i_book: the course book's local Sphinx extension (loaded by _config.yml, sphinx.local_extensions).

It does what Jupyter Book 1.x cannot be configured to do:

1. **Colab links to the real notebooks.** The chapters are ``notebooks/NN_name.ipynb`` at the
   repository root, reached from ``book/`` through the symlink ``book/notebooks``. The theme builds
   launch links from ``repository.path_to_book`` + page name, i.e. ``book/notebooks/...``; this
   extension rewrites them to the notebook's real path in the repository (``notebooks/...``), adds a
   second launch entry for the student version (``notebooks/student/NN_name.ipynb``, where it
   exists), and puts two visible buttons under the title of every chapter page.
2. **MathJax served by the site.** The MathJax 3 files of the ``sphinx-mathjax-offline`` package
   (a pip package, in the course's ``book`` extra) are copied to ``_static/mathjax`` of the built
   site, so ``mathjax_path: mathjax/tex-chtml.js`` (in _config.yml) works without internet.
3. **Static fallbacks for ipywidgets.** A stored widget cannot run without a kernel, and its
   JavaScript would come from a CDN. Every widget view in a notebook's outputs is replaced by a
   note saying that the controls work in a live notebook, the controls' stored values, and the
   outputs stored in the widget's Output areas (e.g. the figure drawn for the stored values).
4. **IPython syntax in code cells.** A notebook saved by Colab names its language "python" without
   the "ipython3" lexer, and highlighting ``!pip install ...`` as plain Python warns (an error
   under ``-W``); code cells of python notebooks are highlighted as IPython.
5. **No script twice.** Inline scripts that reach a page twice (sphinx-thebe's) are dropped once.
6. **The student edition.** Built with the table of contents ``_toc_students.yml`` (``make
   book-students``), the chapters are the student versions ``notebooks/student/NN_name.ipynb``: their
   pages link to themselves only (no link to the notebook with the solutions), the note that opens
   every student version (written for Colab and Jupyter, it links to the full notebook) is left out,
   and the site's title says "student edition".
7. **The package's reference** (``api.md``, ``api/*.md``, by autodoc). Docstrings are read as
   ``help()`` shows them: an indented block after a paragraph (a formula, a usage example) is shown
   verbatim, a ``|`` or a Markdown fence in the text is text, Google-style ``Args:`` sections become parameter lists (in functions and classes only:
   napoleon would read ``#: Text: more`` above a constant as "type: description"), and a method
   without a docstring of its own shows none rather than the one it inherits from PyTorch
   (``nn.Module.forward``'s). The student edition builds no highlighted source pages: the
   package's code holds the answers to some exercises (the answer checks are not documented at all).
"""
from __future__ import annotations

import base64
import html
import json
import posixpath
import re
import shutil
import sys
from importlib.util import find_spec
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from docutils import nodes
from sphinx.application import Sphinx
from sphinx.errors import ExtensionError
from sphinx.ext import viewcode
from sphinx.ext.napoleon import Config as NapoleonConfig
from sphinx.ext.napoleon import GoogleDocstring
from sphinx.util import logging

logger = logging.getLogger(__name__)

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
COLAB_ICON = "_static/images/logo_colab.png"  # shipped by sphinx-book-theme

# MathJax 3 files taken from sphinx-mathjax-offline: the component the site loads, and the
# folders that MathJax loads from on demand (TeX extensions, fonts, menu, accessibility).
MATHJAX_PACKAGE = "sphinx-mathjax-offline"
MATHJAX_FILES = ["tex-chtml.js"]
MATHJAX_DIRS = ["input", "output/chtml", "ui", "a11y", "sre", "adaptors"]

# The student edition: its table of contents, and the tag of the note that opens every student
# version (i2icourse.exercises.student.NOTE_TAG; tests/test_book_config.py checks they agree).
STUDENT_TOC = "_toc_students.yml"
STUDENT_NOTE_TAG = "student-note"
STUDENT_EDITION = "student edition"


# ------------------------------------------------------------------ repository paths and links
def _repo_root(app: Sphinx) -> Path:
    """The repository root: the book's source folder minus ``repository.path_to_book``."""
    root = Path(app.srcdir).resolve()
    path_to_docs = app.config.html_theme_options.get("path_to_docs", "").strip("/")
    for _ in Path(path_to_docs).parts if path_to_docs else ():
        root = root.parent
    return root


def _notebook_paths(app: Sphinx, docname: str) -> tuple[str, str | None, str | None] | None:
    """For a page whose source is a notebook under the repository's notebooks/: (its repository
    path, the path of the chapter notebook with solutions, of its student version), either of the
    last two None where there is none (a student version's page has no link to the solutions).
    None for other pages."""
    source = Path(app.env.doc2path(docname))
    if source.suffix != ".ipynb":
        return None
    root = _repo_root(app)
    try:
        rel = source.resolve().relative_to(root)
    except ValueError:
        return None
    if rel.parts[0] != "notebooks":
        return None
    if len(rel.parts) > 2 and rel.parts[1] == "student":
        return rel.as_posix(), None, rel.as_posix()
    student = Path("notebooks", "student", *rel.parts[1:])
    return rel.as_posix(), rel.as_posix(), student.as_posix() if (root / student).is_file() else None


def _colab_url(app: Sphinx, repo_path: str) -> str:
    options = app.config.html_theme_options
    colab = options.get("launch_buttons", {}).get("colab_url", "").rstrip("/")
    org, repo = urlparse(options.get("repository_url", "")).path.strip("/").split("/")[:2]
    branch = options.get("repository_branch", "") or "main"
    return f"{colab}/github/{org}/{repo}/blob/{branch}/{repo_path}"


def fix_launch_buttons(app: Sphinx, pagename: str, templatename: str, context: dict, doctree: Any) -> None:
    """html-page-context, after sphinx-book-theme's add_launch_buttons (priority 501)."""
    paths = _notebook_paths(app, pagename)
    if paths is None:
        return
    own, full, student = paths
    path_to_docs = app.config.html_theme_options.get("path_to_docs", "").strip("/")
    theme_path = posixpath.join(path_to_docs, pagename + ".ipynb")
    for group in context.get("header_buttons", []):
        if group.get("label") != "launch-buttons":
            continue
        buttons = group["buttons"]
        for button in buttons:
            if "url" in button:
                button["url"] = button["url"].replace(theme_path, own)
        if full and student and _colab_url(app, full) in [b.get("url") for b in buttons]:
            buttons.append(
                {
                    "type": "link",
                    "text": "Colab (student version)",
                    "tooltip": "Open the student version (exercises without solutions) in Colab",
                    "icon": COLAB_ICON,
                    "url": _colab_url(app, student),
                    "label": "colab-student-button",
                }
            )


def add_colab_badges(app: Sphinx, doctree: nodes.document, docname: str) -> None:
    """doctree-resolved: two buttons under the title of every chapter page."""
    if app.builder.format != "html":
        return
    paths = _notebook_paths(app, docname)
    if paths is None or not app.config.html_theme_options.get("launch_buttons", {}).get("colab_url"):
        return
    _, full, student = paths
    icon = posixpath.relpath(COLAB_ICON, posixpath.dirname(docname) or ".")
    if full is None:  # a page of the student edition: its own notebook is the student version
        links = [(_colab_url(app, student), "Open in Colab",
                  "The notebook with the exercises, without their solutions", "i2i-colab-student")]
    else:
        links = [(_colab_url(app, full), "Open in Colab", "The notebook with the solutions", "i2i-colab-full")]
    if full and student:
        links.append(
            (_colab_url(app, student), "Open the student version in Colab",
             "The notebook with the exercises' solutions taken out", "i2i-colab-student")
        )
    html_links = "\n".join(
        f'<a class="i2i-colab-button {cls}" href="{html.escape(url)}" title="{html.escape(tip)}" '
        f'target="_blank" rel="noopener"><img src="{icon}" alt="" width="20" height="20">{html.escape(text)}</a>'
        for url, text, tip, cls in links
    )
    badge = nodes.raw("", f'<div class="i2i-colab-buttons">\n{html_links}\n</div>\n', format="html")
    section = next(iter(doctree.findall(nodes.section)), None)
    if section is not None and section.children and isinstance(section[0], nodes.title):
        section.insert(1, badge)
    else:
        doctree.insert(0, badge)


# ------------------------------------------------------------------ MathJax from the site
def copy_mathjax(app: Sphinx, exception: Exception | None) -> None:
    """build-finished: copy MathJax 3 into _static/mathjax of an HTML build."""
    if exception is not None or app.builder.format != "html":
        return
    spec = find_spec(MATHJAX_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ExtensionError(
            f"i2i_book: the Python package {MATHJAX_PACKAGE!r} is missing; it provides the MathJax "
            f"files that the book serves itself. Install it: pip install {MATHJAX_PACKAGE} "
            "(it is in the course's 'book' extra: pip install -e '.[book]')."
        )
    source = Path(list(spec.submodule_search_locations)[0]) / "static" / "mathjax"
    target = Path(app.outdir) / "_static" / "mathjax"
    for name in MATHJAX_FILES:
        target.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source / name, target / name)
    for name in MATHJAX_DIRS:
        shutil.copytree(source / name, target / name, dirs_exist_ok=True)


def check_mathjax_path(app: Sphinx, config: Any) -> None:
    """config-inited: the page must load the MathJax that copy_mathjax provides."""
    expected = "mathjax/" + MATHJAX_FILES[0]
    if config.mathjax_path != expected:
        raise ExtensionError(f"i2i_book: set sphinx.config.mathjax_path to {expected!r} in _config.yml "
                             f"(it is {config.mathjax_path!r}), so that the book serves MathJax itself")


# ------------------------------------------------------------------ widget fallbacks
_WIDGET_SCRIPT = re.compile(r'<script type="' + re.escape(WIDGET_VIEW) + r'">(.*?)</script>', re.S)


_WIDGET_STATES: dict[str, dict] = {}


def _widget_state(app: Sphinx, docname: str) -> dict:
    """The widget state stored in the page's notebook (metadata.widgets), {} when none."""
    path = Path(app.env.doc2path(docname))
    key = f"{path}@{path.stat().st_mtime_ns if path.exists() else 0}"
    if key not in _WIDGET_STATES:
        try:
            nb = json.loads(path.read_text(encoding="utf-8"))
            _WIDGET_STATES[key] = nb.get("metadata", {}).get("widgets", {}).get(WIDGET_STATE, {}).get("state", {})
        except (OSError, ValueError):
            _WIDGET_STATES[key] = {}
    return _WIDGET_STATES[key]


def _control_label(state: dict) -> str | None:
    """'description = value' of an input widget, None for containers, outputs and buttons."""
    description = str(state.get("description", "")).strip() or None
    if "_options_labels" in state and "index" in state:
        index = state["index"]
        labels = state["_options_labels"]
        value = labels[index] if isinstance(index, int) and 0 <= index < len(labels) else None
    elif "value" in state:
        value = state["value"]
    else:
        return None
    if isinstance(value, list):
        value = "–".join(str(v) for v in value)
    return f"{description} = {value}" if description else str(value)


def _render_output(output: dict) -> str:
    """HTML for one stored Jupyter output (in an Output widget's state)."""
    if output.get("output_type") == "stream":
        text = output.get("text", "")
        return f'<pre class="i2i-widget-stream">{html.escape("".join(text) if isinstance(text, list) else text)}</pre>'
    data = output.get("data", {})
    for mime in ("image/png", "image/jpeg"):
        if mime in data:
            payload = data[mime]
            payload = "".join(payload) if isinstance(payload, list) else payload
            return f'<img class="i2i-widget-image" src="data:{mime};base64,{payload.strip()}" alt="stored output">'
    if "image/svg+xml" in data:
        svg = data["image/svg+xml"]
        svg = "".join(svg) if isinstance(svg, list) else svg
        encoded = base64.b64encode(svg.encode("utf-8")).decode("ascii")
        return f'<img class="i2i-widget-image" src="data:image/svg+xml;base64,{encoded}" alt="stored output">'
    if "text/html" in data:
        text = data["text/html"]
        return "".join(text) if isinstance(text, list) else text
    if "text/plain" in data:
        text = data["text/plain"]
        return f'<pre class="i2i-widget-stream">{html.escape("".join(text) if isinstance(text, list) else text)}</pre>'
    return ""


def _walk_widget(model_id: str, states: dict, controls: list[str], outputs: list[str], seen: set) -> None:
    if model_id in seen or model_id not in states:
        return
    seen.add(model_id)
    model = states[model_id]
    state = model.get("state", {})
    if model.get("model_name") == "OutputModel":
        outputs.extend(filter(None, (_render_output(o) for o in state.get("outputs", []))))
    elif model.get("model_name") not in ("ButtonModel",):
        label = _control_label(state)
        if label:
            controls.append(label)
    for child in state.get("children", []) or []:
        if isinstance(child, str) and child.startswith("IPY_MODEL_"):
            _walk_widget(child[len("IPY_MODEL_"):], states, controls, outputs, seen)


def widget_fallback_html(view: dict, states: dict) -> str:
    """The static stand-in of one widget view."""
    controls: list[str] = []
    outputs: list[str] = []
    _walk_widget(str(view.get("model_id", "")), states, controls, outputs, set())
    note = ("<strong>Interactive widget.</strong> Its controls work in a running notebook: "
            "open this chapter in Colab or Jupyter to use them.")
    items = ", ".join(f"<code>{html.escape(c)}</code>" for c in controls)
    if controls and outputs:
        note += f" Below: its output for {items}, stored with the notebook."
    elif controls:
        note += f" Stored values: {items}."
    elif outputs:
        note += " Below: its output, stored with the notebook."
    parts = [f'<div class="i2i-widget-static">', f'<p class="i2i-widget-note">{note}</p>', *outputs, "</div>"]
    return "\n".join(parts)


def replace_widget_views(app: Sphinx, doctree: nodes.document, docname: str) -> None:
    """doctree-resolved: widget views become static fallbacks."""
    for raw in list(doctree.findall(nodes.raw)):
        text = raw.astext()
        if WIDGET_VIEW not in text:
            continue
        states = _widget_state(app, docname)

        def substitute(match: re.Match) -> str:
            try:
                view = json.loads(match.group(1))
            except ValueError:
                view = {}
            return widget_fallback_html(view, states)

        new = _WIDGET_SCRIPT.sub(substitute, text)
        raw.replace_self(nodes.raw("", new, format="html"))


def tidy_scripts(app: Sphinx, pagename: str, templatename: str, context: dict, doctree: Any) -> None:
    """html-page-context: drop the stored widget state (large, and unused by the static
    fallbacks), and scripts added twice: sphinx-thebe's inline ``const THEBE_JS_URL = ...`` ends
    up twice on every page under Jupyter Book 1.0.4, and the second copy throws a SyntaxError."""
    scripts = context.get("script_files")
    if not isinstance(scripts, list):
        return
    kept, seen = [], set()
    for script in scripts:
        attributes = getattr(script, "attributes", {}) or {}
        if attributes.get("type") == WIDGET_STATE:
            continue
        key = (getattr(script, "filename", None) or "", tuple(sorted((k, str(v)) for k, v in attributes.items())))
        if key in seen:
            continue
        seen.add(key)
        kept.append(script)
    scripts[:] = kept


# ------------------------------------------------------------------ the student edition
def is_student_edition(config: Any) -> bool:
    """Whether the book is being built with the student edition's table of contents."""
    return Path(str(getattr(config, "external_toc_path", "") or "")).name == STUDENT_TOC


def title_student_edition(app: Sphinx, config: Any) -> None:
    """config-inited: the student edition says so in its title (tab, navigation bar)."""
    if is_student_edition(config) and STUDENT_EDITION not in config.html_title:
        config.html_title = f"{config.html_title} ({STUDENT_EDITION})"


def drop_student_note(app: Sphinx, docname: str, source: list[str]) -> None:
    """source-read: a student version's opening note gets MyST-NB's ``remove-cell`` tag.

    The note tells a Colab or Jupyter user where the full notebook is; the student edition's page
    has its own Colab button, and must not point at the solutions."""
    if not str(app.env.doc2path(docname)).endswith(".ipynb") or STUDENT_NOTE_TAG not in source[0]:
        return
    nb = json.loads(source[0])
    for cell in nb.get("cells", []):
        tags = cell.get("metadata", {}).get("tags", [])
        if STUDENT_NOTE_TAG in tags and "remove-cell" not in tags:
            cell["metadata"]["tags"] = [*tags, "remove-cell"]
    source[0] = json.dumps(nb)


# ------------------------------------------------------------------ IPython lexer for code cells
def ipython_code_cells(app: Sphinx, doctree: nodes.document) -> None:
    """doctree-read: python code cells of notebooks are highlighted with the IPython lexer."""
    if not str(app.env.doc2path(app.env.docname)).endswith(".ipynb"):
        return
    for block in doctree.findall(nodes.literal_block):
        parent = block.parent
        if block.get("language") == "python" and parent is not None and "cell_input" in parent.get("classes", []):
            block["language"] = "ipython3"


# ------------------------------------------------------------------ the package's reference
PACKAGE = "i2icourse"
# napoleon's settings for the Google-style sections: parameters as :param: fields, like autodoc's own.
NAPOLEON = NapoleonConfig(napoleon_numpy_docstring=False, napoleon_use_param=True, napoleon_use_rtype=True)


# Lines after which an indented block is reST's own: a list item, a directive, a field, a literal block.
_NOT_A_PARAGRAPH = re.compile(r"^([-*+] |\d+[.)] |\.\. |:)|::$")


def verbatim_indented_blocks(lines: list[str]) -> list[str]:
    """Lines of a docstring in which every indented block that follows a paragraph and a blank line
    (a formula, a usage example: what ``help()`` shows as written) is an reST literal block."""
    out = list(lines)
    for i in range(1, len(out)):
        if not out[i].startswith(" ") or out[i - 1].strip():
            continue
        j = i - 1
        while j > 0 and not out[j].strip():
            j -= 1
        previous = out[j].rstrip()
        if previous and not previous.startswith(" ") and not _NOT_A_PARAGRAPH.search(previous):
            out[j] = previous + (":" if previous.endswith(":") else " ::")
    return out


# An inline literal (``...``), left as it is; a bar (|x - y|, A|B) or a fence (```python) is text.
_INLINE_LITERAL = re.compile(r"(``.+?``)")
_TEXT_MARKS = re.compile(r"\||`{3,}")


def _escape_marks(text: str) -> str:
    return _TEXT_MARKS.sub(lambda m: "".join("\\" + c for c in m.group(0)), text)


def plain_text_marks(lines: list[str]) -> list[str]:
    """Lines of a docstring in which a ``|`` (an absolute value, a norm, "A|B" files) and a run of
    backticks (a Markdown fence) outside inline and block literals are text, not reST markup
    (substitutions, tables): the package's docstrings never use either as markup."""
    out: list[str] = []
    literal_indent: int | None = None  # the indentation of the paragraph that opened a literal block
    for line in lines:
        indent = len(line) - len(line.lstrip())
        if literal_indent is not None and (not line.strip() or indent > literal_indent):
            out.append(line)
            continue
        literal_indent = indent if line.rstrip().endswith("::") else None
        parts = _INLINE_LITERAL.split(line)
        out.append("".join(part if i % 2 else _escape_marks(part) for i, part in enumerate(parts)))
    return out


def package_docstrings(app: Sphinx, what: str, name: str, obj: Any, options: Any, lines: list[str]) -> None:
    """autodoc-process-docstring: read the package's docstrings as help() shows them (item 7)."""
    lines[:] = plain_text_marks(verbatim_indented_blocks(lines))
    if what in ("function", "method", "class", "exception"):
        lines[:] = GoogleDocstring(lines, NAPOLEON, app, what, name, obj, options).lines()


def _owner(method: Any) -> type | None:
    """The class a method is defined in, found from its module and qualified name."""
    owner: Any = sys.modules.get(getattr(method, "__module__", None) or "")
    for part in getattr(method, "__qualname__", "").split(".")[:-1]:
        owner = getattr(owner, part, None)
    return owner if isinstance(owner, type) else None


def drop_foreign_docstrings(app: Sphinx, what: str, name: str, obj: Any, options: Any, lines: list[str]) -> None:
    """autodoc-process-docstring: a method of the package without a docstring of its own shows no
    text inherited from another package (``forward`` would say "Define the computation performed
    at every call", with a link to PyTorch's ``Module`` that the book cannot resolve)."""
    if what != "method" or not name.startswith(PACKAGE + ".") or getattr(obj, "__doc__", "") is not None:
        return
    attribute = name.rpartition(".")[2]
    for base in getattr(_owner(obj), "__mro__", ())[1:]:
        inherited = base.__dict__.get(attribute)
        if inherited is not None and getattr(inherited, "__doc__", None):
            if not base.__module__.startswith(PACKAGE + "."):
                lines.clear()
            return


def no_source_pages_for_students(app: Sphinx, config: Any) -> None:
    """config-inited: the student edition builds no highlighted source pages (viewcode is off)."""
    if not is_student_edition(config):
        return
    handlers = (viewcode.doctree_read, viewcode.collect_pages)
    for event in ("doctree-read", "html-collect-pages"):
        for listener in list(app.events.listeners.get(event, [])):
            if listener.handler in handlers:
                app.disconnect(listener.id)


def setup(app: Sphinx) -> dict:
    app.setup_extension("sphinx.ext.autodoc")  # for its autodoc-process-docstring event
    app.connect("autodoc-process-docstring", package_docstrings)
    app.connect("autodoc-process-docstring", drop_foreign_docstrings, priority=600)
    app.connect("config-inited", no_source_pages_for_students)
    app.connect("doctree-read", ipython_code_cells)
    app.connect("config-inited", check_mathjax_path)
    app.connect("config-inited", title_student_edition)
    app.connect("source-read", drop_student_note)
    app.connect("doctree-resolved", add_colab_badges)
    app.connect("doctree-resolved", replace_widget_views)
    app.connect("html-page-context", fix_launch_buttons, priority=550)
    app.connect("html-page-context", tidy_scripts, priority=550)
    app.connect("build-finished", copy_mathjax)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
