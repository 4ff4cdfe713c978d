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


@pytest.mark.parametrize("model", ["U-Net", "U-Net32", "Resnet18-unet", "GAN(U-Net)"])
def test_every_ssim_map_network_beats_predicting_the_mean(model):
    # Table I's last block: "U-Net   0.2336   0.0749   0.1931" (train MAE ours, paper; valid MAE ours).
    text = stored_text("01_ssim_quality_maps")
    baseline, = number_after(r"predict-the-mean baseline: valid MAE ([\d.]+)", text)
    block = text[text.index("valid MAE (ours)"):]
    _, _, valid = number_after(rf"^{re.escape(model)}\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)", block)
    assert 0 < valid < baseline


def test_bicubic_set5_matches_the_papers_baseline():
    # The per-set table: "Set5  bicubic  28.4330  0.8114"; Snell et al. (Table 2): 28.44 dB.
    psnr, _ = number_after(r"^Set5\s+bicubic\s+([\d.]+)\s+([\d.]+)", stored_text("03_srcnn"))
    assert abs(psnr - 28.44) < 0.1


def test_srcnn_with_mse_gains_a_decibel_over_bicubic():
    gain, = number_after(r"MSE gain over bicubic on Set5: ([+-]?[\d.]+) dB", stored_text("03_srcnn"))
    assert gain >= 1.0


def test_every_srcnn_loss_beats_bicubic_on_set5():
    # The gain table: a header "MSE   MAE  MS-SSIM", then "Set5   1.35  1.23   0.79" (dB over bicubic).
    text = stored_text("03_srcnn")
    block = text[text.index("gain over bicubic (dB)"):]
    gains = number_after(r"^Set5\s+([+-]?[\d.]+)\s+([+-]?[\d.]+)\s+([+-]?[\d.]+)\s*$", block)
    assert all(g > 0 for g in gains)


def test_cyclegan_lands_between_the_identity_and_paired_pix2pix_on_every_seed():
    # Chapter 6's per-seed table: "CycleGAN (unpaired, L1 cycle)     0 14.7694  0.2927 ..." (config, seed,
    # G PSNR, G SSIM); the identity baseline: "350 test crops of 64x64; {'G PSNR': 8.476, 'G SSIM': -0.149, ...".
    text = stored_text("06_cyclegan")
    id_psnr, id_ssim = number_after(r"test crops of \d+x\d+; \{'G PSNR': ([-\d.]+), 'G SSIM': ([-\d.]+)", text)
    rows = re.findall(r"^(CycleGAN \(unpaired, L1 cycle\)|pix2pix \(paired, upper bound\))\s+(\d+)\s+([-\d.]+)\s+([-\d.]+)",
                      text, re.M)
    cyclegan = [(float(p), float(s)) for name, _, p, s in rows if name.startswith("CycleGAN")]
    paired = [(float(p), float(s)) for name, _, p, s in rows if name.startswith("pix2pix")]
    assert len(cyclegan) >= 2 and len(paired) >= 2, rows
    assert all(p > id_psnr + 3 and s > id_ssim + 0.2 for p, s in cyclegan)   # clearly above doing nothing
    assert max(p for p, _ in cyclegan) <= min(p for p, _ in paired) + 0.5       # below (or near) the paired bound


def test_the_dusk_grade_defeats_even_paired_pix2pix_and_the_negative_does_not():
    text = stored_text("06_cyclegan")
    grab = lambda row: number_after(rf"^{re.escape(row)}\s+([-\d.]+)\s+([-\d.]+)", text)
    assert grab("dusk grade: pix2pix (paired)")[0] < grab("dusk grade: identity")[0]
    assert grab("film negative: pix2pix (paired)")[0] > grab("film negative: identity")[0]


@pytest.mark.parametrize("config", ["L1 (Patch70)", "L2", "0.5 L1 + 0.5 L2", "Patch16", "Patch286", "no skip"])
def test_every_group32_row_of_chapter_4_has_two_seeds_and_a_verdict(config):
    # The per-seed table: "   L1 (Patch70)     0  0.9429 ..." (config, seed, ...); the summary has a verdict column.
    text = stored_text("04_pix2pix")
    seeds = re.findall(rf"^\s*{re.escape(config)}\s+(\d+)\s+[\d.]+", text, re.M)
    assert len(set(seeds)) >= 2, seeds
    assert "beyond L1's seed spread on" in text


def test_pix2pix_colours_like_the_targets_where_l1_alone_washes_out():
    # The demo table: "L1 alone  23.34  0.786  0.057  0.003" (PSNR, SSIM, colourfulness, D on the outputs).
    text = stored_text("04_pix2pix")
    row = lambda name: number_after(rf"^{re.escape(name)}\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)", text)
    l1, gan = row("L1 alone"), row("pix2pix (cGAN + L1)")
    target, = number_after(r"^target\s+inf\s+[\d.]+\s+([\d.]+)", text)
    assert abs(gan[2] - target) < abs(l1[2] - target)   # colourfulness closer to the photos'
    assert gan[3] > l1[3]                                # the discriminator is fooled more often
