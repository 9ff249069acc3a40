"""Experiments 6-10: is the output useful, does it transfer, and models that beat the baselines.

6 a classifier on reconstructions, 7 a train-on-A / test-on-B matrix, 8 CIFAR-10 deblurring
(when present), 9 the denoiser that beats the median filter, 10 an AE that beats PCA.
"""

from __future__ import annotations

import dataclasses

import torch

from aecore.baselines import median_filter
from aecore.classifier import accuracy, default_spec, get_classifier
from aecore.config import TrainConfig
from aecore.data import available_offline, data_dir, load_dataset
from aecore.evaluate import corrupted_test_set, evaluate, reconstruct
from aecore.metrics import psnr
from experiments.classic import LATENTS, SHOW
from experiments.figures import save_rows
from experiments.report import Context, Section, fmt, image, minutes, table

CLASSIFIER_LEVELS = [0.1, 0.5, 0.9]
DENOISER_LEVELS = [0.01, 0.05, 0.1, 0.2, 0.5, 0.7, 0.9]
TARGET = (0.05, 0.1, 0.2, 0.5)  # the levels where the issue asks for a 3 dB margin
# (corruption, level) pairs of the generalisation matrix; one U-Net trained on each.
MATRIX = [("gaussian", 0.5), ("salt_pepper", 0.2), ("stripes", 10), ("block", 10)]


def classifier_input(ctx: Context) -> Section:
    """6. A small CNN's accuracy on clean, corrupted, median-filtered and reconstructed images."""
    ds = load_dataset("fashion_mnist")
    # The full run uses the bundled classifier (checkpoints/classifiers/), the same as the app's.
    spec = default_spec("fashion_mnist")
    if ctx.quick:
        spec = dataclasses.replace(spec, limit=2000)
    cnn = get_classifier(ds, spec).model
    labels = ds.test_labels[: ctx.test_limit]
    janet = ctx.bundled("janet50_fashion_salt_pepper")
    unet = ctx.fit(ctx.bundled("unet_fashion_salt_pepper_any"))
    clean, _ = corrupted_test_set(ds, "none", 0.0, "cpu", ctx.test_limit)
    rows = []
    for p in CLASSIFIER_LEVELS:
        _, noisy = corrupted_test_set(ds, "salt_pepper", p, "cpu", ctx.test_limit)
        per_level = ctx.fit(dataclasses.replace(janet, level=p))
        inputs = [
            noisy,
            median_filter(noisy, 3),
            reconstruct(per_level.model, noisy),
            reconstruct(unet.model, noisy),
        ]
        rows.append([p] + [f"{100 * accuracy(cnn, x, labels):.1f}" for x in inputs])
    clean_acc = 100 * accuracy(cnn, clean, labels)
    best = max(rows, key=lambda r: float(r[4]) - float(r[1]))
    headline = (
        f"Classifier on Fashion-MNIST at p = {best[0]}: {best[1]}% on the corrupted input, "
        f"{best[2]}% after the median filter, {best[4]}% after the U-Net ({clean_acc:.1f}% on "
        "clean images)."
    )
    body = f"""A small CNN (two conv layers, {spec.epochs} epochs) trained on *clean*
Fashion-MNIST, then tested on the test set as it arrives after each treatment. Accuracy in %;
on clean test images it scores {clean_acc:.1f}%. JANet-50 is the model trained at that p
(section 1); the U-Net is one model for every p (section 9).

{table(["p", "corrupted", "median 3x3", "JANet-50 (per p)", "U-Net (any p)"], rows)}

{headline}"""
    return Section(6, "The reconstruction as a classifier's input (Fashion-MNIST)", body, headline)


def generalisation(ctx: Context) -> Section:
    """7. U-Nets trained on one corruption, tested on every other: a PSNR matrix."""
    ds = load_dataset("mnist")
    tests = {
        f"{c} {lvl:g}": corrupted_test_set(ds, c, lvl, "cpu", ctx.test_limit) for c, lvl in MATRIX
    }

    def mean_psnr(x: torch.Tensor, clean: torch.Tensor) -> str:
        return fmt(float(psnr(x, clean).mean()))

    rows = [["corrupted input"] + [mean_psnr(n, c) for c, n in tests.values()]]
    rows.append(["median 3x3"] + [mean_psnr(median_filter(n, 3), c) for c, n in tests.values()])
    for corruption, level in MATRIX:
        cfg = TrainConfig(
            model="unet",
            dataset="mnist",
            corruption=corruption,
            level=level,
            batch_size=32,
            epochs=2,
        )
        model = ctx.fit(cfg).model
        cells = [mean_psnr(reconstruct(model, n), c) for c, n in tests.values()]
        rows.append([f"U-Net trained on {corruption} {level:g}"] + cells)
    n = len(MATRIX)
    below = [
        (rows[2 + i][0].removeprefix("U-Net trained on "), name)
        for i in range(n)
        for j, name in enumerate(tests)
        if i != j and float(rows[2 + i][1 + j]) < float(rows[0][1 + j])
    ]
    worse = (
        "Off the diagonal, these models do worse than leaving the input alone: "
        + "; ".join(f"trained on {a}, tested on {b}" for a, b in below)
        + ". A denoiser only helps against noise that resembles what it was trained on."
        if below
        else "Every model improves on the corrupted input even for corruptions it never saw."
    )
    body = f"""Four U-Nets ({cfg.epochs} epochs each, the recipe of the bundled inpainting
models), each trained on one corruption of MNIST and tested on all four. Test PSNR in dB;
columns are the test corruption.

{table(["trained on / tested on", *tests], rows)}

The diagonal is what each model was trained for. {worse}"""
    return Section(7, "Generalisation across corruptions (MNIST)", body)


def cifar_deblur(ctx: Context) -> Section:
    """8. CIFAR-10 deblurring with conv_transpose; skipped when CIFAR-10 is not on disk."""
    title = "CIFAR-10 deblurring with conv_transpose"
    if not available_offline("cifar10"):
        line = f"skipped: CIFAR-10 not present in AECORE_DATA_DIR ({data_dir()})"
        return Section(8, title, line + ".", line)
    cfg = TrainConfig(
        model="conv_transpose", dataset="cifar10", corruption="blur", level=1.5, epochs=5
    )
    ds = load_dataset("cifar10")
    ckpt = ctx.fit(cfg)
    m = evaluate(ckpt.model, ds, "blur", 1.5, "mse", ctx.test_limit)
    clean, noisy = corrupted_test_set(ds, "blur", 1.5, "cpu", limit=SHOW)
    save_rows(
        [("clean", clean), ("blurred", noisy), ("decoded", reconstruct(ckpt.model, noisy))],
        ctx.figure("e8_cifar_deblur.png"),
    )
    rows = [
        ["blurred input", fmt(m["test_psnr_noisy"]), fmt(m["test_ssim_noisy"], 3)],
        ["conv_transpose", fmt(m["test_psnr"]), fmt(m["test_ssim"], 3)],
    ]
    params = sum(p.numel() for p in ckpt.model.parameters())
    body = f"""Gaussian blur sigma 1.5, conv_transpose ({params:,} parameters), {cfg.epochs} epochs
({minutes(ckpt)}).

{table(["method", "PSNR (dB)", "SSIM"], rows)}

{image("e8_cifar_deblur.png", "CIFAR-10 deblurring")}"""
    return Section(8, title, body)


def best_denoiser(ctx: Context) -> Section:
    """9. One U-Net for every salt-and-pepper level against the median filter and JANet-50."""
    cfg = ctx.bundled("unet_fashion_salt_pepper_any")
    janet = ctx.bundled("janet50_fashion_salt_pepper")
    ds = load_dataset(cfg.dataset)
    ckpt = ctx.fit(cfg)
    rows, fig, margins = [], [], {}
    for p in DENOISER_LEVELS:
        m = evaluate(ckpt.model, ds, "salt_pepper", p, cfg.loss, limit=ctx.test_limit)
        j = evaluate(
            ctx.fit(dataclasses.replace(janet, level=p)).model,
            ds,
            "salt_pepper",
            p,
            "mse",
            limit=ctx.test_limit,
        )
        margins[p] = m["test_psnr"] - m["test_psnr_median3"]
        rows.append(
            [
                p,
                fmt(m["test_psnr_noisy"]),
                fmt(m["test_psnr_median3"]),
                fmt(j["test_psnr"]),
                fmt(m["test_psnr"]),
                f"{margins[p]:+.2f}",
                fmt(m["test_ssim_median3"], 3),
                fmt(j["test_ssim"], 3),
                fmt(m["test_ssim"], 3),
            ]
        )
    for p in (0.05, 0.2, 0.5, 0.9):
        clean, noisy = corrupted_test_set(ds, "salt_pepper", p, "cpu", limit=SHOW)
        fig += [
            (f"p = {p}", noisy),
            ("median 3x3", median_filter(noisy, 3)),
            ("U-Net", reconstruct(ckpt.model, noisy)),
        ]
    save_rows(fig + [("clean", clean)], ctx.figure("e9_best_denoiser.png"))
    met = all(margins[p] >= 3.0 for p in TARGET)
    worst = min(TARGET, key=margins.get)
    verdict = (
        f"One U-Net beats the 3x3 median by {min(margins[p] for p in TARGET):.2f} dB or more "
        f"at every p in {{{', '.join(map(str, TARGET))}}}"
        if met
        else f"The U-Net misses the 3 dB target at p = {worst} ({margins[worst]:+.2f} dB)"
    )
    why = (
        "Why it wins: the skips and the residual output let it keep every pixel it believes "
        "and repair only the ones it does not, using context from about 20 pixels around, and "
        "training over all levels taught it to tell how noisy its input is."
        if met
        else ""
    )
    header = ["p", "noisy", "median3", "JANet-50 (per p)", "U-Net (one model)"]
    header += ["U-Net - median3", "median3 SSIM", "JANet-50 SSIM", "U-Net SSIM"]
    recipe = f"{ckpt.config.epochs} epochs at batch {cfg.batch_size} took {minutes(ckpt)}"
    last = rows[-1]
    body = f"""One checkpoint for every level: aecore's U-Net (two pooling levels, skip
connections, residual output; 39k parameters) trained with `level_sampling="uniform"`, so each
training batch is corrupted at a p drawn from U(0, {cfg.level}); {recipe} on
{ckpt.info.get("hardware", "this machine")}. Test PSNR (dB) and SSIM, with JANet-50 trained
separately at each p (section 1) for comparison:

{table(header, rows)}

{verdict}. At p = 0.9, nine pixels in ten are noise: the U-Net reaches {last[4]} dB / SSIM
{last[-1]} (median: {last[2]} dB / {last[6]}); the figure below shows what that looks like.
{why}

{image("e9_best_denoiser.png", "U-Net against the median filter")}"""
    return Section(
        9, "Beyond the classics: a denoiser that beats the median filter", body, verdict + "."
    )


def ae_beats_pca(ctx: Context) -> Section:
    """10. A deeper MLP AE against PCA at every latent size (with the shallow AE of section 2)."""
    ds = load_dataset("mnist")
    rows, losses, ratios = [], [], []
    for k in LATENTS:
        shallow = ctx.fit(ctx.bundled(f"dense{k}_mnist"))
        deep = ctx.fit(
            TrainConfig(
                model="deep_mlp", latent=k, width=128, dataset="mnist", corruption="none", epochs=10
            )
        )
        s = evaluate(shallow.model, ds, "none", 0.0, "mse", limit=ctx.test_limit)
        d = evaluate(deep.model, ds, "none", 0.0, "mse", limit=ctx.test_limit)
        if d["test_mse"] >= d["test_mse_pca"]:
            losses.append(k)
        ratios.append(d["test_mse"] / d["test_mse_pca"])
        rows.append(
            [
                k,
                fmt(d["test_mse_pca"], 4),
                fmt(s["test_mse"], 4),
                fmt(d["test_mse"], 4),
                f"{ratios[-1]:.2f}",
            ]
        )
    best = LATENTS[ratios.index(min(ratios))]
    why = (
        "A nonlinear encoder and decoder can bend the code around the curved set of digit "
        "images, which no linear projection can; relative to PCA the gain is largest at latent "
        f"{best} (deep / PCA = {min(ratios):.2f})."
        if min(ratios) < 1
        else ""
    )
    verdict = (
        "The deep MLP AE reaches a lower test MSE than PCA at every latent size."
        if not losses
        else f"The deep MLP AE does not beat PCA at latent {', '.join(map(str, losses))}."
    )
    body = f"""Deep MLP AE: 784-256-128-k | k-128-256-784 with ReLUs, a linear code and a sigmoid
output, {deep.config.epochs} epochs on clean MNIST. Test MSE per pixel, with PCA of the same
size and the shallow AE of section 2:

{table(["latent k", "PCA", "shallow AE", "deep MLP AE", "deep / PCA"], rows)}

{verdict} {why}"""
    return Section(10, "Beyond the classics: an autoencoder that beats PCA", body, verdict)
