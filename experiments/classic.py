"""Experiments 1-5: the classic autoencoder tutorials, reproduced and measured against baselines.

Every table is the test set (all of it, or 500 images with --quick), corrupted with the fixed
seed of aecore.evaluate, so numbers across sections compare.
"""

from __future__ import annotations

import dataclasses

from aecore.baselines import median_filter, pca_reconstruct
from aecore.best_classical import VAL_IMAGES, BestClassical
from aecore.config import TrainConfig
from aecore.data import ImageDataset, load_dataset, to_float
from aecore.evaluate import corrupted_test_set, evaluate, pca_for, reconstruct
from aecore.latent import encode_all, manifold_grid, samples
from aecore.sweep import dead_units
from experiments.figures import line_chart, save_grid, save_rows
from experiments.report import Context, Section, fmt, image, minutes, table, winners

SHOW = 8  # images per figure row
GRID = 12  # decoded latent grids are GRID x GRID images
JANET_LEVELS = [0.01, 0.05, 0.1, 0.2, 0.5, 0.7, 0.9]
LATENTS = [1, 2, 8, 32]
VAE_LATENTS = [2, 5, 10, 20]


def janet_salt_pepper(ctx: Context) -> Section:
    """1. JANet-50 on Fashion-MNIST over salt-and-pepper levels; JANet-2's decoded latent grid."""
    base = ctx.bundled("janet50_fashion_salt_pepper")
    ds = load_dataset(base.dataset)
    rows, fig_rows, curves, ckpts, best, vs_median, vs_best = [], [], {}, [], [], [], []
    for p in JANET_LEVELS:
        ckpt = ctx.fit(dataclasses.replace(base, level=p))
        ckpts.append(ckpt)
        m = evaluate(ckpt.model, ds, "salt_pepper", p, base.loss, limit=ctx.test_limit)
        best.append(ctx.best(ds, "salt_pepper", p))
        vs_median.append(m["test_psnr"] - m["test_psnr_median3"])
        vs_best.append(m["test_psnr"] - best[-1].psnr)
        rows.append(
            [p, fmt(m["test_psnr_noisy"]), fmt(m["test_psnr_median3"]), fmt(best[-1].psnr)]
            + [fmt(m["test_psnr"])]
            + [fmt(m[f"test_ssim{s}"], 3) for s in ("_noisy", "_median3", "")]
            + [f"{vs_median[-1]:+.2f}", f"{vs_best[-1]:+.2f}"]
        )
        clean, noisy = corrupted_test_set(ds, "salt_pepper", p, "cpu", limit=SHOW)
        if not fig_rows:
            fig_rows.append(("original", clean))
        fig_rows += [(f"p = {p}", noisy), ("decoded", reconstruct(ckpt.model, noisy))]
        curves[f"p = {p}"] = [(h.epoch, h.val_psnr_db) for h in ckpt.history]
    save_rows(fig_rows, ctx.figure("e1_janet50_rows.png"), scale=1)
    line_chart(
        curves,
        ctx.figure("e1_janet50_curves.png"),
        "JANet-50, Fashion-MNIST: validation PSNR per epoch",
        "epoch",
        "val PSNR (dB)",
    )
    grid_text, m2 = _janet2_grid(ctx, ds)
    verdict = _janet_verdict(vs_median, "the 3x3 median") + " Against the best tuned classical "
    verdict += "method: " + _janet_verdict(vs_best, "it").removeprefix("JANet-50 ")
    train_min = sum(c.info.get("train_seconds", 0.0) for c in ckpts) / 60
    header = ["p", "noisy PSNR", "median3 PSNR", "best classical PSNR", "JANet-50 PSNR"]
    header += ["noisy SSIM", "median3 SSIM", "JANet-50 SSIM", "JANet - median3 (dB)"]
    header += ["JANet - best classical (dB)"]
    body = f"""JANet-50 (784-144-50 | 50-144-784), one model per level, {ckpt.config.epochs} epochs
each ({train_min:.1f} min of training for all seven). PSNR in dB and SSIM on the test set, against
the noisy input, a 3x3 median filter and the best classical method, tuned per p on
{VAL_IMAGES} validation images.

{table(header, rows)}

Best classical method per level: {winners(JANET_LEVELS, best)}.

{verdict}{_janet_why(vs_median, vs_best)}

{image("e1_janet50_rows.png", "original, corrupted and decoded per level")}

{image("e1_janet50_curves.png", "validation PSNR per epoch")}

JANet-2: the decoder over {grid_text} of evenly spaced 2-D codes (between the 5% and 95%
quantiles of the test set's codes). Test MSE {fmt(m2["test_mse"], 4)} (PCA with 2 components:
{fmt(m2["test_mse_pca"], 4)}).

{image("e1_janet2_grid.png", "JANet-2 decoded latent grid")}"""
    title = "JANet-50 denoising over salt-and-pepper levels (Fashion-MNIST)"
    return Section(1, title, body, verdict)


def _janet2_grid(ctx: Context, ds: ImageDataset) -> tuple[str, dict[str, float]]:
    """JANet-2's decoded latent grid (a figure) and its test metrics on clean images."""
    two = ctx.fit(ctx.bundled("janet2_fashion"))
    codes = encode_all(two.model, ds.test_images[:5000])
    grid = manifold_grid(two.model, n=GRID, codes=codes)
    save_grid(grid, ctx.figure("e1_janet2_grid.png"), GRID)
    return f"a {GRID}x{GRID} grid", evaluate(two.model, ds, "none", 0.0, "mse", ctx.test_limit)


def _janet_verdict(margins: list[float], other: str) -> str:
    """ "JANet-50 beats <other> at p = ... and loses at p = ...", from its margins per level."""
    wins = [p for p, d in zip(JANET_LEVELS, margins, strict=True) if d > 0]
    losses = [p for p, d in zip(JANET_LEVELS, margins, strict=True) if d <= 0]
    if not wins:
        return f"JANet-50 loses to {other} at every p."
    text = f"JANet-50 beats {other} at p = {', '.join(map(str, wins))}"
    return text + (f" and loses at p = {', '.join(map(str, losses))}." if losses else ".")


def _janet_why(vs_median: list[float], vs_best: list[float]) -> str:
    """Why JANet-50 ties at low levels and wins at high ones, said only when the numbers show it."""
    low = [abs(d) for p, d in zip(JANET_LEVELS, vs_median, strict=True) if p <= 0.1]
    why = ""
    if max(low) < 1.0:
        why += f""" Up to p = 0.1 it is within {max(low):.2f} dB of the 3x3 median: the median
filter leaves most pixels alone and blurs a little, while a 50-number code cannot carry the
texture of a garment, so the autoencoder blurs even where there was no noise (note its SSIM,
below the median's there)."""
    if vs_median[-1] > 0:
        why += """ At high levels most median windows are mostly noise, while the autoencoder's
learned idea of what a garment looks like still holds."""
    gaps = [m - b for m, b in zip(vs_median, vs_best, strict=True)]  # best classical - median3
    why += f""" The tuned classical winners are {min(gaps):.2f} to {max(gaps):.2f} dB better than
the 3x3 median on these test images, so every margin shrinks by as much against them."""
    return why + " Section 9 has stronger models, held against the same baselines."


def latent_sizes(ctx: Context) -> Section:
    """2. Shallow dense AE with latent 1, 2, 8, 32 on MNIST next to PCA with as many components."""
    ds = load_dataset("mnist")
    clean = to_float(ds.test_images[:SHOW])
    rows, fig_rows = [], [("original", clean)]
    for k in LATENTS:
        ckpt = ctx.fit(ctx.bundled(f"dense{k}_mnist"))
        m = evaluate(ckpt.model, ds, "none", 0.0, "mse", limit=ctx.test_limit)
        diff = m["test_mse"] - m["test_mse_pca"]
        dead = dead_units(encode_all(ckpt.model, to_float(ds.test_images[: ctx.test_limit])))
        row = [k, fmt(m["test_mse_pca"], 4), fmt(m["test_mse"], 4), f"{diff:+.4f}", dead]
        rows.append(row)
        fig_rows += [
            (f"dense {k}", reconstruct(ckpt.model, clean)),
            (f"PCA {k}", pca_reconstruct(pca_for(ds, k), clean)),
        ]
    save_rows(fig_rows, ctx.figure("e2_latent_sizes.png"), scale=1)
    losses = [r[0] for r in rows if r[3].startswith("+")]
    verdict = (
        f"The shallow AE loses to PCA at latent {', '.join(map(str, losses))}."
        if losses
        else "The shallow AE beats PCA at every size."
    )
    if losses:
        verdict += (
            f" It beats PCA at latent {', '.join(map(str, wins))}."
            if (wins := [r[0] for r in rows if r[0] not in losses])
            else ""
        )
    body = f"""Dense AE: Linear(784, k) + ReLU | Linear(k, 784) + sigmoid, trained on clean MNIST
with per-pixel MSE ({ckpt.config.epochs} epochs). PCA: fitted on the clean training set,
reconstruction clipped to [0, 1]. Test MSE per pixel:

{table(["latent k", "PCA MSE", "dense AE MSE", "AE - PCA", "dead code units"], rows)}

{verdict} Why a shallow AE cannot do much better than PCA: with one layer each way it is close
to a linear projection and back, and the best linear projection for MSE *is* PCA (Baldi &
Hornik 1989); the sigmoid output helps a little by keeping pixels in [0, 1]. The ReLU on its
code costs it: a code unit is 0 for every image on one side of its hyperplane, so it carries
less than a principal component does, and a unit that is 0 for all images is lost altogether
(the last column: code units that are 0 for every test image; such a unit died in training, its
hyperplane pushed past every image, and no gradient reaches it again). A deeper, properly
nonlinear AE is in section 10.

{image("e2_latent_sizes.png", "reconstructions per latent size, AE and PCA")}"""
    return Section(2, "Latent size: dense AE against PCA (MNIST)", body, verdict)


def gaussian_denoising(ctx: Context) -> Section:
    """3. Gaussian sigma 0.5 on MNIST: the shallow dense AE with 16 units and conv_same."""
    conv = ctx.bundled("conv_same_mnist_gaussian")
    dense = TrainConfig(
        model="dense", latent=16, dataset="mnist", corruption="gaussian", level=0.5, epochs=10
    )
    ds = load_dataset("mnist")
    results, best = {}, ctx.best(ds, "gaussian", 0.5)
    for name, cfg in (("dense AE, 16 units", dense), ("conv_same", conv)):
        ckpt = ctx.fit(cfg)
        results[name] = (ckpt, evaluate(ckpt.model, ds, "gaussian", 0.5, "mse", ctx.test_limit))
    m = results["dense AE, 16 units"][1]
    rows = [
        ["noisy input", fmt(m["test_psnr_noisy"]), fmt(m["test_ssim_noisy"], 3)],
        ["median 3x3", fmt(m["test_psnr_median3"]), fmt(m["test_ssim_median3"], 3)],
        ["median 5x5", fmt(m["test_psnr_median5"]), fmt(m["test_ssim_median5"], 3)],
        ["PCA, 16 components", fmt(m["test_psnr_pca"]), fmt(m["test_ssim_pca"], 3)],
        [f"best classical: {best.label}", fmt(best.psnr), fmt(best.test["ssim"], 3)],
    ] + [
        [
            f"{name} ({ck.config.epochs} epochs, {minutes(ck)})",
            fmt(r["test_psnr"]),
            fmt(r["test_ssim"], 3),
        ]
        for name, (ck, r) in results.items()
    ]
    conv_psnr = results["conv_same"][1]["test_psnr"]
    conv_gain, conv_best = conv_psnr - m["test_psnr_median3"], conv_psnr - best.psnr
    dense_gain, dense_best = m["test_psnr"] - m["test_psnr_median3"], m["test_psnr"] - best.psnr
    verdict = f"conv_same {_beats(conv_gain)} the 3x3 median by {abs(conv_gain):.2f} dB; its "
    verdict += f"margin over the best tuned classical method ({best.label}, {best.psnr:.2f} dB"
    if abs(best.psnr - m["test_psnr_median3"]) < 0.005:
        verdict += ", which is the 3x3 median itself"
    verdict += f") is {conv_best:+.2f} dB. The 16-unit dense AE {_beats(dense_gain)} the median "
    verdict += f"by {abs(dense_gain):.2f} dB ({dense_best:+.2f} dB against the best classical)."
    headline = verdict
    if dense_gain <= 0:
        verdict += """ A 16-number code keeps the rough digit but not its exact strokes, and
it is no better than PCA with 16 components, which is nearly the same linear bottleneck. The
convolutional model has no bottleneck in space: each output pixel looks at its noisy
neighbourhood, which is what Gaussian noise calls for."""
    verdict += f" {best.describe()}"
    clean, noisy = corrupted_test_set(ds, "gaussian", 0.5, "cpu", limit=SHOW)
    fig = [("clean", clean), ("sigma 0.5", noisy), ("median 3x3", median_filter(noisy, 3))]
    fig += [(name, reconstruct(ck.model, noisy)) for name, (ck, _) in results.items()]
    save_rows(fig, ctx.figure("e3_gaussian.png"))
    body = f"""Additive Gaussian noise, sigma 0.5, clipped to [0, 1] (the Keras blog post's setup).

{table(["method", "PSNR (dB)", "SSIM"], rows)}

{verdict}

{image("e3_gaussian.png", "clean, noisy, median and the two autoencoders")}"""
    return Section(3, "Gaussian denoising (MNIST, sigma 0.5)", body, headline)


def _beats(margin: float) -> str:
    return "beats" if margin > 0 else "loses to"


def inpainting(ctx: Context) -> Section:
    """4. Stripes (10 of 28 rows) and a 10x10 gray block on MNIST, with conv autoencoders."""
    ds = load_dataset("mnist")
    rows, fig, best = [], [], {}
    for corruption, bundled in (("stripes", "unet_mnist_stripes"), ("block", "unet_mnist_block")):
        unet = ctx.bundled(bundled)
        classic = TrainConfig(
            model="conv_pool", dataset="mnist", corruption=corruption, level=10, epochs=3
        )
        models = {"conv_pool": ctx.fit(classic), "U-Net": ctx.fit(unet)}
        scores = {
            n: evaluate(c.model, ds, corruption, 10, "mse", ctx.test_limit)
            for n, c in models.items()
        }
        m, b = scores["U-Net"], ctx.best(ds, corruption, 10)
        best[corruption] = b
        rows.append(
            [corruption, fmt(m["test_psnr_noisy"]), fmt(m["test_psnr_median3"]), fmt(b.psnr)]
            + [fmt(scores[n]["test_psnr"]) for n in models]
            + [f"{m['test_psnr'] - b.psnr:+.2f}", fmt(m["test_ssim_median3"], 3)]
            + [fmt(b.test["ssim"], 3)]
            + [fmt(scores[n]["test_ssim"], 3) for n in models]
        )
        clean, noisy = corrupted_test_set(ds, corruption, 10, "cpu", limit=SHOW)
        fig += [("clean", clean), (corruption, noisy), ("median 3x3", median_filter(noisy, 3))]
        fig += [(n, reconstruct(c.model, noisy)) for n, c in models.items()]
    save_rows(fig, ctx.figure("e4_inpainting.png"))
    verdict = " ".join(_inpainting_verdict(r, best[r[0]]) for r in rows)
    header = ["corruption", "corrupted PSNR", "median3 PSNR", "best classical PSNR"]
    header += ["conv_pool PSNR", "U-Net PSNR", "U-Net - best classical (dB)", "median3 SSIM"]
    header += ["best classical SSIM", "conv_pool SSIM", "U-Net SSIM"]
    epochs = {n: c.config.epochs for n, c in models.items()}
    conv_pool = " and ".join(
        f"{r[4]} dB on {r[0]} ({float(r[4]) - float(r[2]):+.2f} dB against the 3x3 median, "
        f"{float(r[4]) - float(r[3]):+.2f} dB against the best classical)"
        for r in rows
    )
    body = f"""Stripes: 10 of the 28 rows blacked out, different rows per image. Block: a 10x10
gray (0.5) square at a random place. conv_pool is the classic pooled conv AE with a BatchNorm
after each hidden conv ({epochs["conv_pool"]} epochs, Adam 1e-3); U-Net is aecore's
skip-connection model (bundled, {epochs["U-Net"]} epochs). Best classical: the classical methods
meant for the corruption (for these two, only the median filter, of size 3, 5 or 7), tuned on
{VAL_IMAGES} validation images: {"; ".join(f"{c}: {b.label}" for c, b in best.items())}.

{table(header, rows)}

{verdict} A median filter cannot inpaint, whatever its size: it only fills a hole narrower than
its window, while an autoencoder has learned what digits look like and can draw missing strokes
back. conv_pool reaches {conv_pool}. An earlier version of this document trained the tutorial's
conv_pool, without BatchNorm (now `conv_pool_plain`): it collapsed to one black image for every
input, 9.73 dB on both corruptions (issue #11; `bench/collapse.py` measures the collapse).

{image("e4_inpainting.png", "inpainting stripes and a block")}"""
    return Section(4, "Inpainting (MNIST): stripes and a gray block", body, verdict)


def _inpainting_verdict(row: list[object], best: BestClassical) -> str:
    """One corruption's sentence, from its table row (corruption, corrupted, median3, best
    classical, conv_pool, U-Net, U-Net - best, ...)."""
    name, corrupted, median3, classical, _, unet, margin = row[:7]
    same = classical == median3  # the tuned winner may be the 3x3 median itself
    text = f"{str(name).capitalize()}: the U-Net reaches {unet} dB against {median3} dB for the "
    text += "3x3 median" + (", which is also" if same else f" and {classical} dB for")
    text += f" the best tuned classical method ({best.label}): a margin of {margin} dB."
    if float(str(classical)) < float(str(corrupted)):
        text += f" Every tuned filter scores below the untouched input ({corrupted} dB)."
    return text


def vae_latents(ctx: Context) -> Section:
    """5. VAE-MLP on MNIST with latent 2, 5, 10, 20: test ELBO terms and samples."""
    ds = load_dataset("mnist")
    base = ctx.bundled("vae20_mnist")
    rows, fig = [], []
    for k in VAE_LATENTS:
        ckpt = ctx.fit(dataclasses.replace(base, latent=k))
        m = evaluate(ckpt.model, ds, "none", 0.0, "bce", limit=ctx.test_limit)
        rows.append(
            [
                k,
                fmt(m["test_loss"], 1),
                fmt(m["test_recon"], 1),
                fmt(m["test_kl"], 1),
                fmt(m["test_psnr"]),
            ]
        )
        fig.append((f"latent {k}", samples(ckpt.model, 10, seed=0)))
        if k == 2:
            save_grid(manifold_grid(ckpt.model, n=GRID), ctx.figure("e5_vae2_grid.png"), GRID)
    save_rows(fig, ctx.figure("e5_vae_samples.png"))
    elbo = [float(r[1]) for r in rows]
    best = VAE_LATENTS[elbo.index(min(elbo))]
    trend = f"The best (lowest) -ELBO is at latent {best}: more dimensions buy a better "
    trend += "reconstruction and cost more KL."
    body = f"""VAE-MLP (784-400-k | k-400-784) as in pytorch/examples, BCE,
{ckpt.config.epochs} epochs. Test set, nats per image (lower is better): the negative ELBO is
the reconstruction term (summed BCE) plus KL(q(z|x) || N(0, I)) (Kingma & Welling 2014,
Appendix B); PSNR of the reconstruction from the posterior mean.

{table(["latent", "-ELBO", "reconstruction", "KL", "PSNR (dB)"], rows)}

{trend} Samples from the prior, one row per latent size:

{image("e5_vae_samples.png", "VAE samples")}

The latent-2 decoder over a {GRID}x{GRID} grid of prior quantiles (5% to 95%), as in the
paper's Figure 4:

{image("e5_vae2_grid.png", "VAE latent-2 manifold")}"""
    return Section(5, "VAE latent sizes (MNIST)", body)
