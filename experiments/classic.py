"""Experiments 1-5: the classic autoencoder tutorials, reproduced and measured against baselines.

Every table is the test set (all of it, or 500 images with --quick), corrupted with the fixed
seed of aecore.evaluate, so numbers across sections compare.
"""

from __future__ import annotations

import dataclasses

from aecore.baselines import median_filter, pca_reconstruct
from aecore.config import TrainConfig
from aecore.data import load_dataset, to_float
from aecore.evaluate import corrupted_test_set, evaluate, pca_for, reconstruct
from aecore.latent import encode_all, manifold_grid, samples
from experiments.figures import line_chart, save_grid, save_rows
from experiments.report import Context, Section, fmt, image, minutes, table

SHOW = 8  # images per figure row
GRID = 12  # decoded latent grids are GRID x GRID images
JANET_LEVELS = [0.01, 0.05, 0.1, 0.2, 0.5, 0.7, 0.9]
LATENTS = [1, 2, 8, 32]
VAE_LATENTS = [2, 5, 10, 20]


def janet_salt_pepper(ctx: Context) -> Section:
    """1. JANet-50 on Fashion-MNIST over salt-and-pepper levels; JANet-2's decoded latent grid."""
    base = ctx.bundled("janet50_fashion_salt_pepper")
    ds = load_dataset(base.dataset)
    rows, fig_rows, curves, ckpts = [], [], {}, []
    for p in JANET_LEVELS:
        ckpt = ctx.fit(dataclasses.replace(base, level=p))
        ckpts.append(ckpt)
        m = evaluate(ckpt.model, ds, "salt_pepper", p, base.loss, limit=ctx.test_limit)
        rows.append(
            [p, fmt(m["test_psnr_noisy"]), fmt(m["test_psnr_median3"]), fmt(m["test_psnr"])]
            + [fmt(m[f"test_ssim{s}"], 3) for s in ("_noisy", "_median3", "")]
            + [fmt(m["test_psnr"] - m["test_psnr_median3"])]
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

    two = ctx.fit(ctx.bundled("janet2_fashion"))
    codes = encode_all(two.model, ds.test_images[:5000])
    grid = manifold_grid(two.model, n=GRID, codes=codes)
    save_grid(grid, ctx.figure("e1_janet2_grid.png"), GRID)
    m2 = evaluate(two.model, ds, "none", 0.0, "mse", limit=ctx.test_limit)

    wins = [r[0] for r in rows if float(r[-1]) > 0]
    losses = [r[0] for r in rows if float(r[-1]) <= 0]
    verdict = f"JANet-50 beats the 3x3 median at p = {', '.join(map(str, wins)) or 'no level'}"
    verdict += f" and loses at p = {', '.join(map(str, losses))}." if losses else "."
    low = [abs(float(r[-1])) for r in rows if r[0] <= 0.1]
    why = ""
    if max(low) < 1.0:
        why += f""" Up to p = 0.1 the two are within {max(low):.2f} dB: the median filter leaves
most pixels alone and blurs a little, while a 50-number code cannot carry the texture of a
garment, so the autoencoder blurs even where there was no noise (note its SSIM, below the
median's there)."""
    if wins and max(wins) == JANET_LEVELS[-1]:
        why += """ At high levels most median windows are mostly noise, while the autoencoder's
learned idea of what a garment looks like still holds, so it wins by several dB. Section 9 has a
model that wins clearly at every level."""
    train_min = sum(c.info.get("train_seconds", 0.0) for c in ckpts) / 60
    header = ["p", "noisy PSNR", "median3 PSNR", "JANet-50 PSNR", "noisy SSIM", "median3 SSIM"]
    header += ["JANet-50 SSIM", "JANet - median3 (dB)"]
    grid_text = f"a {GRID}x{GRID} grid"
    body = f"""JANet-50 (784-144-50 | 50-144-784), one model per level, {ckpt.config.epochs} epochs
each ({train_min:.1f} min of training for all seven). PSNR in dB and SSIM on the test set, against
the noisy input and a 3x3 median filter.

{table(header, rows)}

{verdict}{why}

{image("e1_janet50_rows.png", "original, corrupted and decoded per level")}

{image("e1_janet50_curves.png", "validation PSNR per epoch")}

JANet-2: the decoder over {grid_text} of evenly spaced 2-D codes (between the 5% and 95%
quantiles of the test set's codes). Test MSE {fmt(m2["test_mse"], 4)} (PCA with 2 components:
{fmt(m2["test_mse_pca"], 4)}).

{image("e1_janet2_grid.png", "JANet-2 decoded latent grid")}"""
    title = "JANet-50 denoising over salt-and-pepper levels (Fashion-MNIST)"
    return Section(1, title, body, verdict)


def latent_sizes(ctx: Context) -> Section:
    """2. Shallow dense AE with latent 1, 2, 8, 32 on MNIST next to PCA with as many components."""
    ds = load_dataset("mnist")
    clean = to_float(ds.test_images[:SHOW])
    rows, fig_rows = [], [("original", clean)]
    for k in LATENTS:
        ckpt = ctx.fit(ctx.bundled(f"dense{k}_mnist"))
        m = evaluate(ckpt.model, ds, "none", 0.0, "mse", limit=ctx.test_limit)
        diff = m["test_mse"] - m["test_mse_pca"]
        rows.append([k, fmt(m["test_mse_pca"], 4), fmt(m["test_mse"], 4), f"{diff:+.4f}"])
        fig_rows += [
            (f"dense {k}", reconstruct(ckpt.model, clean)),
            (f"PCA {k}", pca_reconstruct(pca_for(ds, k), clean)),
        ]
    save_rows(fig_rows, ctx.figure("e2_latent_sizes.png"), scale=1)
    losses = [r[0] for r in rows if r[-1].startswith("+")]
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

{table(["latent k", "PCA MSE", "dense AE MSE", "AE - PCA"], rows)}

{verdict} Why a shallow AE cannot do much better than PCA: with one layer each way it is close
to a linear projection and back, and the best linear projection for MSE *is* PCA (Baldi &
Hornik 1989); the sigmoid output helps a little by keeping pixels in [0, 1]. The ReLU on its
code costs it: a code unit is 0 for every image on one side of its hyperplane, so it carries
less than a principal component does, and a unit that is 0 for all images is lost altogether.
A deeper, properly nonlinear AE is in section 10.

{image("e2_latent_sizes.png", "reconstructions per latent size, AE and PCA")}"""
    return Section(2, "Latent size: dense AE against PCA (MNIST)", body, verdict)


def gaussian_denoising(ctx: Context) -> Section:
    """3. Gaussian sigma 0.5 on MNIST: the shallow dense AE with 16 units and conv_same."""
    conv = ctx.bundled("conv_same_mnist_gaussian")
    dense = TrainConfig(
        model="dense", latent=16, dataset="mnist", corruption="gaussian", level=0.5, epochs=10
    )
    ds = load_dataset("mnist")
    results = {}
    for name, cfg in (("dense AE, 16 units", dense), ("conv_same", conv)):
        ckpt = ctx.fit(cfg)
        results[name] = (ckpt, evaluate(ckpt.model, ds, "gaussian", 0.5, "mse", ctx.test_limit))
    m = results["dense AE, 16 units"][1]
    rows = [
        ["noisy input", fmt(m["test_psnr_noisy"]), fmt(m["test_ssim_noisy"], 3)],
        ["median 3x3", fmt(m["test_psnr_median3"]), fmt(m["test_ssim_median3"], 3)],
        ["median 5x5", fmt(m["test_psnr_median5"]), fmt(m["test_ssim_median5"], 3)],
        ["PCA, 16 components", fmt(m["test_psnr_pca"]), fmt(m["test_ssim_pca"], 3)],
    ] + [
        [
            f"{name} ({ck.config.epochs} epochs, {minutes(ck)})",
            fmt(r["test_psnr"]),
            fmt(r["test_ssim"], 3),
        ]
        for name, (ck, r) in results.items()
    ]
    conv_gain = results["conv_same"][1]["test_psnr"] - m["test_psnr_median3"]
    dense_gain = m["test_psnr"] - m["test_psnr_median3"]
    verdict = f"conv_same beats the 3x3 median by {conv_gain:.2f} dB; the 16-unit dense AE "
    verdict += f"{'beats' if dense_gain > 0 else 'loses to'} it by {abs(dense_gain):.2f} dB."
    headline = verdict
    if dense_gain <= 0:
        verdict += """ A 16-number code keeps the rough digit but not its exact strokes, and
it is no better than PCA with 16 components, which is nearly the same linear bottleneck. The
convolutional model has no bottleneck in space: each output pixel looks at its noisy
neighbourhood, which is what Gaussian noise calls for."""
    clean, noisy = corrupted_test_set(ds, "gaussian", 0.5, "cpu", limit=SHOW)
    fig = [("clean", clean), ("sigma 0.5", noisy), ("median 3x3", median_filter(noisy, 3))]
    fig += [(name, reconstruct(ck.model, noisy)) for name, (ck, _) in results.items()]
    save_rows(fig, ctx.figure("e3_gaussian.png"))
    body = f"""Additive Gaussian noise, sigma 0.5, clipped to [0, 1] (the Keras blog post's setup).

{table(["method", "PSNR (dB)", "SSIM"], rows)}

{verdict}

{image("e3_gaussian.png", "clean, noisy, median and the two autoencoders")}"""
    return Section(3, "Gaussian denoising (MNIST, sigma 0.5)", body, headline)


def inpainting(ctx: Context) -> Section:
    """4. Stripes (10 of 28 rows) and a 10x10 gray block on MNIST, with conv autoencoders."""
    ds = load_dataset("mnist")
    rows, fig = [], []
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
        m = scores["U-Net"]
        rows.append(
            [corruption, fmt(m["test_psnr_noisy"]), fmt(m["test_psnr_median3"])]
            + [fmt(scores[n]["test_psnr"]) for n in models]
            + [fmt(m["test_ssim_median3"], 3)]
            + [fmt(scores[n]["test_ssim"], 3) for n in models]
        )
        clean, noisy = corrupted_test_set(ds, corruption, 10, "cpu", limit=SHOW)
        fig += [("clean", clean), (corruption, noisy), ("median 3x3", median_filter(noisy, 3))]
        fig += [(n, reconstruct(c.model, noisy)) for n, c in models.items()]
    save_rows(fig, ctx.figure("e4_inpainting.png"))
    verdict = " ".join(
        f"{r[0].capitalize()}: the U-Net reaches {r[4]} dB against {r[2]} dB for the median."
        for r in rows
    )
    header = ["corruption", "corrupted PSNR", "median3 PSNR", "conv_pool PSNR", "U-Net PSNR"]
    header += ["median3 SSIM", "conv_pool SSIM", "U-Net SSIM"]
    epochs = {n: c.config.epochs for n, c in models.items()}
    conv_pool = " and ".join(
        f"{r[3]} dB on {r[0]} ({float(r[3]) - float(r[2]):+.2f} dB against the median)"
        for r in rows
    )
    body = f"""Stripes: 10 of the 28 rows blacked out, different rows per image. Block: a 10x10
gray (0.5) square at a random place. conv_pool is the classic pooled conv AE with a BatchNorm
after each hidden conv ({epochs["conv_pool"]} epochs, Adam 1e-3); U-Net is aecore's
skip-connection model (bundled, {epochs["U-Net"]} epochs).

{table(header, rows)}

{verdict} A median filter cannot inpaint: it only fills a hole narrower than its window,
while an autoencoder has learned what digits look like and can draw missing strokes back.
conv_pool reaches {conv_pool}. An earlier version of this document trained the tutorial's
conv_pool, without BatchNorm (now `conv_pool_plain`): it collapsed to one black image for every
input, 9.73 dB on both corruptions (issue #11; `bench/collapse.py` measures the collapse).

{image("e4_inpainting.png", "inpainting stripes and a block")}"""
    return Section(4, "Inpainting (MNIST): stripes and a gray block", body, verdict)


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
