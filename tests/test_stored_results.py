"""The claims the chapters make about their stored cpu-profile results hold in those results.

The book shows the notebooks' stored outputs (the cpu profile); CI runs the notebooks in the smoke
profile, whose numbers mean nothing. So a claim such as "pix2pix beats the identity" is checked here,
on the outputs the reader sees, not by an assert inside the notebook.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


def stored_text(chapter: str) -> str:
    """All text outputs (streams and text/plain) of an authoring notebook, in order."""
    nb = json.loads((NOTEBOOKS / f"{chapter}.ipynb").read_text(encoding="utf-8"))
    parts = []
    for cell in nb["cells"]:
        for out in cell.get("outputs", []):
            text = out.get("text") or out.get("data", {}).get("text/plain", "")
            parts.append("".join(text) if isinstance(text, list) else str(text))
    return "\n".join(parts)


def number_after(pattern: str, text: str) -> list[float]:
    found = re.search(pattern, text, re.M)
    assert found, f"no stored output matches {pattern!r}: re-run the notebook in the cpu profile"
    return [float(g) for g in found.groups()]


def test_pix2pix_beats_the_identity():
    psnr, ssim = number_after(r"pix2pix vs identity: PSNR ([+-][\d.]+) dB, SSIM ([+-][\d.]+)", stored_text("04_pix2pix"))
    assert psnr > 0 and ssim > 0


def test_blended_tiles_have_weaker_seams_than_naive_stitching():
    text = stored_text("04_pix2pix")
    naive, = number_after(r"^naive stitching\s+([\d.]+)", text)
    blended, = number_after(r"^overlap \+ blending\s+([\d.]+)", text)
    assert blended < naive


@pytest.mark.parametrize("config", ["base", "base + KL", "aug", "aug + KL"])
def test_every_kl_pix2pix_model_beats_handing_back_the_label_map(config):
    # The table's SSIM/PSNR block: "base   0.367 ± 0.009  17.94 ± 0.05 ..." and "identity (label map)  0.272  13.10".
    text = stored_text("05_kl_pix2pix")
    block = text[text.index("SSIM          PSNR"):]
    ssim, psnr = number_after(rf"^{re.escape(config)}\s+([\d.]+) ± [\d.]+\s+([\d.]+) ± [\d.]+", block)
    id_ssim, id_psnr = number_after(r"^identity \(label map\)\s+([\d.]+)\s+([\d.]+)", block)
    assert ssim > id_ssim and psnr > id_psnr
