import matplotlib

matplotlib.use("Agg")

import torch

from i2icourse import plot, train


def test_figures_have_one_axis_per_image_and_titles():
    imgs = [torch.rand(3, 8, 8), torch.rand(1, 8, 8), torch.rand(3, 8, 8)]
    fig = plot.show_images(imgs, ["a", "b", "c"], ncols=2)
    titled = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert titled == ["a", "b", "c"] and len(fig.axes) == 4


def test_rows_maps_and_curves():
    fig = plot.show_rows({"in": [torch.rand(1, 8, 8)] * 2, "out": [torch.rand(1, 8, 8)] * 2},
                         col_titles=["x", "y"], cmap="viridis", colorbar=True)
    assert [ax.get_ylabel() for ax in fig.axes[:4:2]] == ["in", "out"]
    fig = plot.show_map(torch.rand(3, 8, 8), torch.rand(1, 8, 8))
    assert len(fig.axes) == 3  # image, map, colour bar
    fig = plot.show_maps({"l": torch.rand(1, 8, 8), "c": torch.rand(1, 8, 8)})
    assert [ax.get_title() for ax in fig.axes[:2]] == ["l", "c"]
    h = train.History()
    for s in range(1, 11):
        h.log(s, {"loss": 1 / s})
    fig = plot.plot_history(h, smooth=3)
    line = fig.axes[0].get_lines()[0]
    assert len(line.get_xdata()) == 8
    fig = plot.bar_chart({"MSE": 1.0, "MS-SSIM": 2.0}, reference={"MSE": 1.5, "MS-SSIM": 2.5})
    assert len(fig.axes[0].patches) == 4
