"""Show the package's own code in a notebook: the lines a chapter teaches, with a link to them on GitHub.

In a chapter::

    from i2icourse import source
    source.show(UNetGenerator.forward)     # a method
    source.show(receptive_field)           # a function
    source.show(SRCNN)                     # a class
    source.links(unet, Pix2Pix)            # one line linking to modules (or to those defining these)

The code is read from the installed package by :mod:`inspect`, so a chapter shows exactly what runs,
and it is displayed as Markdown (a fenced Python code block under the object's name and a "view
source" link), which the built book and Colab both render. Outside IPython the same text is printed.

The links point at ``<repository>/blob/main/<path>#L<first>-L<last>``; the repository is the package
metadata's Homepage (set in pyproject.toml), or :data:`i2icourse.REPOSITORY_URL` when the package
has no metadata (run from a plain checkout). The book stores these outputs: after a change of the
package, ``python book/refresh_source.py`` brings them up to date (a test fails until it has run).
"""
from __future__ import annotations

import importlib.metadata
import inspect
import re
import textwrap
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import i2icourse

#: The distribution and top-level package whose code this module shows.
PACKAGE = "i2icourse"
#: The branch the "view source" links point at.
BRANCH = "main"


def repository_url() -> str:
    """The course's repository: the Homepage of the package metadata, else :data:`i2icourse.REPOSITORY_URL`."""
    try:
        meta = importlib.metadata.metadata(PACKAGE)
    except importlib.metadata.PackageNotFoundError:
        return i2icourse.REPOSITORY_URL
    for entry in meta.get_all("Project-URL") or []:
        label, _, url = entry.partition(",")
        if label.strip().lower().replace("-", "") == "homepage" and url.strip():
            return url.strip().rstrip("/")
    home = meta.get("Home-page")
    return home.strip().rstrip("/") if home and home.strip() not in ("", "UNKNOWN") else i2icourse.REPOSITORY_URL


def file_url(path: str, start: int | None = None, end: int | None = None) -> str:
    """The GitHub page of ``path`` (relative to the repository root), optionally lines ``start``-``end``."""
    url = f"{repository_url()}/blob/{BRANCH}/{path}"
    return url if start is None else f"{url}#L{start}-L{end if end is not None else start}"


@dataclass(frozen=True)
class Source:
    """The source of one function, class or method of the package: where it is and what it says."""

    name: str   # qualified name, e.g. i2icourse.models.unet.UNetGenerator.forward
    path: str   # file in the repository, e.g. i2icourse/models/unet.py
    start: int  # first line shown (1-based, in the file)
    end: int    # last line shown
    code: str   # the lines, dedented

    @property
    def url(self) -> str:
        """The "view source" link: these lines of the file on GitHub."""
        return file_url(self.path, self.start, self.end)

    def markdown(self) -> str:
        """A heading with the name and the link, then the code as a fenced Python block."""
        longest = max((len(run) for run in re.findall(r"`+", self.code)), default=0)
        fence = "`" * max(3, longest + 1)  # a fence no run of backticks in the code can close
        return (f"**`{self.name}`** · `{self.path}`, lines {self.start}–{self.end} · [view source]({self.url})\n\n"
                f"{fence}python\n{self.code}\n{fence}\n")

    def heading(self) -> str:
        """One line of plain text: the name, where it is, and the link."""
        return f"{self.name}  ({self.path}, lines {self.start}-{self.end}; {self.url})"

    def text(self) -> str:
        """The heading and the code as plain text, for a terminal."""
        return f"{self.heading()}\n\n{self.code}\n"


def _in_package(module_name: str | None) -> bool:
    return module_name is not None and (module_name == PACKAGE or module_name.startswith(PACKAGE + "."))


def _unwrap(obj: object) -> object:
    """The plain function or class behind a method, property, static/class method or decorator."""
    if isinstance(obj, property):
        obj = obj.fget
    if isinstance(obj, (staticmethod, classmethod)):
        obj = obj.__func__
    if inspect.ismethod(obj):
        obj = obj.__func__
    return inspect.unwrap(obj) if callable(obj) else obj


def _module_path(module: ModuleType) -> str:
    """The module's file in the repository, from its dotted name: i2icourse.models.unet -> i2icourse/models/unet.py."""
    parts = module.__name__.split(".")
    package = Path(getattr(module, "__file__", "") or "").name == "__init__.py"
    return "/".join(parts) + ("/__init__.py" if package else ".py")


def find(obj: object, *, lines: tuple[int, int] | None = None) -> Source:
    """Locate the source of a function, class or method of the package.

    ``lines=(first, last)`` keeps only those lines of it, counted from 1 at its first line (its
    decorator or ``def``/``class`` line), both included: for a long function, the part a chapter is about.
    """
    target = _unwrap(obj)
    if not (inspect.isfunction(target) or inspect.isclass(target)):
        hint = (f"; to show its class, pass {type(obj).__name__}" if _in_package(type(obj).__module__)
                else "; pass a function, class or method of the i2icourse package")
        what = getattr(obj, "__qualname__", None) or f"a {type(obj).__name__} object"
        raise TypeError(f"source.show: {what} is not a function, class or method defined in Python "
                        f"({type(obj).__name__}), so it has no Python source of its own to show{hint}")
    module = inspect.getmodule(target)
    name = f"{target.__module__}.{target.__qualname__}"
    if module is None or not _in_package(module.__name__):
        raise ValueError(f"source.show: {name} is not part of the i2icourse package; show() shows the course's "
                         "own code and links to its repository")
    try:
        code_lines, first = inspect.getsourcelines(target)
    except (OSError, TypeError) as e:
        raise OSError(f"source.show: the source of {name} cannot be read from {getattr(module, '__file__', '?')} "
                      f"({e}); install the package from its source files (pip install -e .)") from e
    if lines is not None:
        lo, hi = lines
        if not 1 <= lo <= hi <= len(code_lines):
            raise ValueError(f"source.show: lines={lines!r} is outside {name}, which has {len(code_lines)} lines "
                             f"(give (first, last) with 1 <= first <= last <= {len(code_lines)})")
        code_lines, first = code_lines[lo - 1:hi], first + lo - 1
    code = textwrap.dedent("".join(code_lines)).rstrip("\n")
    return Source(name, _module_path(module), first, first + len(code_lines) - 1, code)


def _module_of(obj: object) -> ModuleType:
    """``obj`` if it is a module of the package, else the package module that defines it."""
    module = obj if isinstance(obj, ModuleType) else inspect.getmodule(_unwrap(obj))
    if module is None or not _in_package(module.__name__):
        raise TypeError(f"source.links: {obj!r:.80} is neither a module of the i2icourse package nor defined in one")
    return module


def links_markdown(*objects: object) -> str:
    """One Markdown line linking to the files of ``objects`` (modules, or functions and classes: their modules)."""
    if not objects:
        raise ValueError("source.links: name at least one module of the i2icourse package (or something defined in one)")
    modules = list(dict.fromkeys(_module_of(obj) for obj in objects))  # each module once, in order
    items = [f"[`{m.__name__}`]({file_url(_module_path(m))})" for m in modules]
    return "**The code of this chapter:** " + " · ".join(items) + "\n"


def _display(markdown: str, text: str, plain: str | None = None) -> None:
    """Display Markdown in IPython, or print ``text`` elsewhere.

    ``plain`` is the Markdown's plain-text form stored beside it (default ``text``): a front end
    that renders Markdown never shows it, so a short one keeps the notebook small.
    """
    try:
        from IPython import get_ipython
        from IPython.display import display
    except ImportError:
        get_ipython = None
    if get_ipython is None or get_ipython() is None:
        print(text)
        return
    display({"text/markdown": markdown, "text/plain": text if plain is None else plain}, raw=True)


def show(obj: object, *, lines: tuple[int, int] | None = None) -> None:
    """Display the source of a function, class or method of the package, with its name and a "view source" link."""
    src = find(obj, lines=lines)
    _display(src.markdown(), src.text(), plain=src.heading())


def links(*objects: object) -> None:
    """Display one line linking to the modules a chapter teaches, on GitHub: give the modules, or what they define."""
    md = links_markdown(*objects)
    _display(md, re.sub(r"\[`([^`]+)`\]\(([^)]+)\)", r"\1 (\2)", md.replace("**", "")))
