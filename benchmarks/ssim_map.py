"""Time the full SSIM map: i2icourse.metrics.ssim(full=True) against skimage's structural_similarity.

Run ``python benchmarks/ssim_map.py``. Same settings on both sides (Gaussian 11x11, sigma 1.5,
population covariance, full-size map with symmetric padding), on full-size skimage photos with
Gaussian noise, grey and colour. skimage computes in float64 on the CPU; ours in float32, on the CPU
and, when there is one, on the GPU. Prints the best of a few repetitions and ours/skimage (below 1:
ours is faster), plus the largest map difference as a reminder that both compute the same thing.
Prints only; timings depend on the machine (set OMP_NUM_THREADS to compare like with like).
"""
from __future__ import annotations

import time

import numpy as np
import torch
from skimage import data
from skimage.color import rgb2gray
from skimage.metrics import structural_similarity

from i2icourse import metrics

REPEATS = 5


def photos() -> dict[str, np.ndarray]:
    """Full-size skimage photos in [0, 1], (H, W) or (H, W, 3)."""
    return {
        "camera (grey)": data.camera() / 255.0,
        "moon (grey)": data.moon() / 255.0,
        "astronaut": data.astronaut() / 255.0,
        "astronaut (grey)": rgb2gray(data.astronaut()),
        "coffee": data.coffee() / 255.0,
        "hubble_deep_field": data.hubble_deep_field() / 255.0,
    }


def best_time(fn, repeats: int = REPEATS, sync=lambda: None) -> float:
    """Best wall-clock time of ``repeats`` calls, in milliseconds, after one warm-up call."""
    fn()
    sync()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t0)
    return 1000 * min(times)


def to_tensor(a: np.ndarray) -> torch.Tensor:
    t = torch.from_numpy(np.ascontiguousarray(a)).float()
    return t[None] if t.dim() == 2 else t.permute(2, 0, 1).contiguous()


def main() -> None:
    rng = np.random.default_rng(0)
    cuda = torch.cuda.is_available()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU thread(s)"
          + (f", GPU: {torch.cuda.get_device_name()}" if cuda else ", no GPU"))
    header = f"{'image':<20}{'size':>14}{'skimage ms':>12}{'ours cpu ms':>13}{'cpu ratio':>11}"
    if cuda:
        header += f"{'ours cuda ms':>14}{'cuda ratio':>12}"
    header += f"{'max |diff|':>12}"
    print(header)
    print("-" * len(header))
    for name, a in photos().items():
        b = np.clip(a + rng.normal(0, 20 / 255, a.shape), 0, 1)
        channel_axis = 2 if a.ndim == 3 else None
        ref_map = structural_similarity(a, b, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                                        data_range=1.0, full=True, channel_axis=channel_axis)[1]
        t_sk = best_time(lambda: structural_similarity(
            a, b, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=1.0,
            full=True, channel_axis=channel_axis))
        x, y = to_tensor(a), to_tensor(b)
        with torch.no_grad():
            ours_map = metrics.ssim(x, y, full=True)[1]
            t_cpu = best_time(lambda: metrics.ssim(x, y, full=True))
        diff = np.abs(ours_map.permute(1, 2, 0).squeeze(-1).double().numpy() - ref_map).max()
        size = "x".join(map(str, a.shape))
        row = f"{name:<20}{size:>14}{t_sk:>12.1f}{t_cpu:>13.1f}{t_cpu / t_sk:>11.2f}"
        if cuda:
            xg, yg = x.cuda(), y.cuda()
            with torch.no_grad():
                t_gpu = best_time(lambda: metrics.ssim(xg, yg, full=True), sync=torch.cuda.synchronize)
            row += f"{t_gpu:>14.2f}{t_gpu / t_sk:>12.4f}"
        print(row + f"{diff:>12.1e}")
    print("ratio = ours / skimage (below 1: ours is faster). Ours includes the [0, 1] input checks.")


if __name__ == "__main__":
    main()
