"""Every result a chapter's text states comes from an output of that chapter: prose cannot drift.

A *result-looking number* is a decimal with two or more digits after the point (24.62, 0.616,
+5.73) in the plain text of a markdown cell. It must appear among the numbers that the same
notebook's stored outputs print (streams, tables, HTML), at the precision the text gives it: 24.62
is found in an output that prints 24.6213 or 24.62, not in one that prints 24.7. The sign is not
compared, so a difference stated as "falls by 0.43" is found in an output printing -0.43.

Two simple markings exempt a number, because it is not a result of the course:

* **a quotation**: the paragraph cites its source with a ``{cite}`` role (a paper's numbers stay
  literal, next to their source);
* **a constant or a formula**: the number is in inline code (`` `betas=(0.5, 0.999)` ``) or in math
  (``$K = (0.01, 0.03)$``, ``$$ ... $$``).

Everything else -- our scores, times, counts with decimals, differences -- must be printed by a cell
before the text may state it.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
CHAPTERS = sorted(p.name for p in NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))

RESULT = re.compile(r"(?<![\w.])[-+−]?\d+\.\d{2,}(?![\w.])")
PRINTED = re.compile(r"[-+]?\d+\.\d+(?:[eE][-+]?\d+)?")


def output_texts(nb: dict) -> list[str]:
    """The text of every stored output: streams, text/plain, text/html and text/markdown."""
    texts = []
    for cell in nb["cells"]:
        for out in cell.get("outputs", []):
            parts = [out.get("text")] + [out.get("data", {}).get(k) for k in ("text/plain", "text/html", "text/markdown")]
            texts += ["".join(p) if isinstance(p, list) else p for p in parts if p]
    return texts


def printed_numbers(nb: dict) -> set[float]:
    return {abs(float(m.group())) for text in output_texts(nb) for m in PRINTED.finditer(text)}


def plain_text(paragraph: str) -> str:
    """A paragraph without its inline code and math, where constants and formulas live."""
    text = re.sub(r"`[^`]*`", " ", paragraph)
    text = re.sub(r"\$\$.*?\$\$", " ", text, flags=re.S)
    return re.sub(r"\$[^$]*\$", " ", text)


def stated_results(nb: dict) -> list[tuple[int, str]]:
    """(cell index, number) of every result-looking number that the markdown states unmarked."""
    found = []
    for i, cell in enumerate(nb["cells"]):
        if cell["cell_type"] != "markdown":
            continue
        source = re.sub(r"```.*?```", lambda m: m.group() if m.group().startswith("```{") else " ",
                        "".join(cell["source"]), flags=re.S)  # fenced code blocks hold code, not results
        for paragraph in re.split(r"\n\s*\n", source):
            if "{cite" in paragraph:
                continue  # a quotation, next to its source
            found += [(i, m.group()) for m in RESULT.finditer(plain_text(paragraph))]
    return found


def is_printed(number: str, printed: set[float]) -> bool:
    decimals = len(number.split(".")[1])
    value = abs(float(number.replace("−", "-")))
    return any(abs(p - value) <= 0.5 * 10 ** -decimals + 1e-9 for p in printed)


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_every_number_the_text_states_is_printed_by_a_cell(chapter):
    nb = json.loads((NOTEBOOKS / chapter).read_text(encoding="utf-8"))
    printed = printed_numbers(nb)
    missing = [(i, n) for i, n in stated_results(nb) if not is_printed(n, printed)]
    assert not missing, (f"{chapter}: the markdown states numbers that no output prints (cell, number): {missing}; "
                         "print them from the cell that computes them, or mark a quotation ({cite}) or a constant (`code`, $math$)")


def test_the_rule_finds_an_unprinted_result_and_spares_quotations_and_constants():
    nb = {"cells": [
        {"cell_type": "code", "source": [], "outputs": [{"output_type": "stream", "text": ["PSNR 24.6213 dB, SSIM -0.43\n"]}]},
        {"cell_type": "markdown", "source": ["We reach 24.62 dB; SSIM falls by 0.43 and 0.616 nowhere.\n\n",
                                             "The paper {cite}`x` reports 30.52.\n\n",
                                             "Adam with `betas=(0.5, 0.999)` and $K_1 = 0.01$.\n"]},
    ]}
    stated = stated_results(nb)
    assert [n for _, n in stated] == ["24.62", "0.43", "0.616"]
    printed = printed_numbers(nb)
    assert [n for _, n in stated if not is_printed(n, printed)] == ["0.616"]
    assert not is_printed("24.7", printed) and is_printed("24.6", printed)
