"""Figures for the notebooks, one module per kind, every name also here: ``plot.show_images(...)``.

* :mod:`i2icourse.plot.figures` -- image grids with titles, quality maps with a colour bar, training
  curves, bar charts, and the notebooks' figure format;
* :mod:`i2icourse.plot.diagrams` -- the architecture diagrams (U-Net, CycleGAN), drawn from numbers;
* :mod:`i2icourse.plot.rankings` -- the chart of a tally of rankings and the "be the judge" panel.

Every function draws on matplotlib and returns the figure, so a notebook can show it, save it or
add to it. Images are (C,H,W) tensors in [0, 1], as everywhere in the course. The figures import
nothing of the package but :mod:`i2icourse.images`.
"""
import matplotlib.pyplot as plt  # noqa: F401  (``plot.plt``: a chapter draws a figure of its own with it)

from i2icourse.plot.diagrams import UNET_256_WIDTHS, cyclegan_diagram, unet_diagram
from i2icourse.plot.figures import (Image, bar_chart, notebook_figures, plot_history, show_images, show_map,
                                    show_maps, show_rows)
from i2icourse.plot.rankings import Tally, judge_widget, plot_tally

__all__ = [
    "Image", "bar_chart", "notebook_figures", "plot_history", "show_images", "show_map", "show_maps", "show_rows",
    "UNET_256_WIDTHS", "cyclegan_diagram", "unet_diagram",
    "Tally", "judge_widget", "plot_tally",
]
