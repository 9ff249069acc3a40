"""Experiments 6-10: is the output useful, does it transfer, and models that beat the baselines.

6 a classifier on reconstructions, 7 a train-on-A / test-on-B matrix, 8 CIFAR-10 deblurring
(when present), 9 the denoisers against the median filter and the best tuned classical method,
10 an AE that beats PCA.
"""

from __future__ import annotations

import dataclasses

import torch

from aecore import classical
from aecore.baselines import median_filter
from aecore.best_classical import VAL_IMAGES, BestClassical
from aecore.checkpoints import Checkpoint
from aecore.classifier import accuracies, default_spec, get_classifier
from aecore.config import TrainConfig
from aecore.data import ImageDataset, available_offline, data_dir, load_dataset
from aecore.evaluate import corrupted_test_set, evaluate, reconstruct
from aecore.metrics import psnr
from experiments.classic import LATENTS, SHOW
from experiments.figures import save_rows
from experiments.report import Context, Section, fmt, image, minutes, table, winners

CLASSIFIER_LEVELS = [0.1, 0.5, 0.9]
DENOISER_LEVELS = [0.01, 0.05, 0.1, 0.2, 0.5, 0.7, 0.9]
TARGET = (0.05, 0.1, 0.2, 0.5)  # the levels where the issue asks for a 3 dB margin
# (corruption, level) pairs of the generalisation matrix; one U-Net trained on each.
MATRIX = [("gaussian", 0.5), ("salt_pepper", 0.2), ("stripes", 10), ("block", 10)]


def classifier_input(ctx: Context) -> Section:
    """6. A small CNN's accuracy on clean, corrupted, filtered and reconstructed images."""
    ds = load_dataset("fashion_mnist")
    # The full run uses the bundled classifier (checkpoints/classifiers/), the same as the app's.
    spec = default_spec("fashion_mnist")
    if ctx.quick:
        spec = dataclasses.replace(spec, limit=2000)
    cnn = get_classifier(ds, spec).model
    janet = ctx.bundled("janet50_fashion_salt_pepper")
    unet = ctx.fit(ctx.bundled("unet_fashion_salt_pepper_any"))
    columns = ["corrupted", "median 3x3", "best classical", "JANet-50 (per p)", "U-Net (any p)"]
    rows, best, clean_acc = [], [], 0.0
    for p in CLASSIFIER_LEVELS:
        best.append(ctx.best(ds, "salt_pepper", p))
        models = {"JANet-50 (per p)": ctx.fit(dataclasses.replace(janet, level=p)).model}
        models["U-Net (any p)"] = unet.model
        acc = accuracies(cnn, ds, "salt_pepper", p, models, ctx.test_limit, best=best[-1])
        clean_acc = 100 * acc["clean"]
        rows.append([p] + [f"{100 * acc[c]:.1f}" for c in columns])
    top = max(rows, key=lambda r: float(r[5]) - float(r[1]))
    headline = (
        f"Classifier on Fashion-MNIST at p = {top[0]}: {top[1]}% on the corrupted input, "
        f"{top[2]}% after the 3x3 median, {top[3]}% after the best tuned classical method, "
        f"{top[5]}% after the U-Net ({clean_acc:.1f}% on clean images)."
    )
    body = f"""A small CNN (two conv layers, {spec.epochs} epochs) trained on *clean*
Fashion-MNIST, then tested on the test set as it arrives after each treatment. Accuracy in %;
on clean test images it scores {clean_acc:.1f}%. Best classical is the classical method tuned
for PSNR at that p (as in section 1: {winners(CLASSIFIER_LEVELS, best)}); JANet-50 is the model
trained at that p (section 1); the U-Net is one model for every p (section 9).

{table(["p", *columns], rows)}

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
    """9. Two U-Nets for every salt-and-pepper level against the median, the best tuned classical
    method and JANet-50."""
    cfg = ctx.bundled("unet_fashion_salt_pepper_any")
    ds = load_dataset(cfg.dataset)
    ckpt, wide = ctx.fit(cfg), ctx.fit(ctx.bundled("unet_wide_fashion_salt_pepper"))
    scores = {p: _denoiser_scores(ctx, ds, p, ckpt, wide) for p in DENOISER_LEVELS}
    rows, ssim_rows = [], []
    for p, (m, j, w, b) in scores.items():
        wide_psnr = fmt(w and w["test_psnr"])
        rows.append(
            [p, fmt(m["test_psnr_noisy"]), fmt(m["test_psnr_median3"]), fmt(b.psnr)]
            + [fmt(j["test_psnr"]), fmt(m["test_psnr"]), wide_psnr]
            + [f"{m['test_psnr'] - m['test_psnr_median3']:+.2f}", f"{m['test_psnr'] - b.psnr:+.2f}"]
            + [f"{w['test_psnr'] - b.psnr:+.2f}" if w else "-"]
        )
        ssim_rows.append(
            [p, fmt(m["test_ssim_median3"], 3), fmt(b.test["ssim"], 3), fmt(j["test_ssim"], 3)]
            + [fmt(m["test_ssim"], 3), fmt(w and w["test_ssim"], 3)]
        )
    _denoiser_figure(ctx, ds, ckpt, wide, {p: s[3] for p, s in scores.items()})
    headline, why = _denoiser_verdict(scores, wide)
    header = ["p", "noisy", "median3", "best classical", "JANet-50 (per p)", "U-Net (one model)"]
    header += ["wide U-Net (p <= 0.5)", "U-Net - median3", "U-Net - best", "wide U-Net - best"]
    recipe = f"{ckpt.config.epochs} epochs at batch {cfg.batch_size} took {minutes(ckpt)}"
    wide_recipe = f"{wide.config.epochs} epochs at batch {wide.config.batch_size}, {minutes(wide)}"
    m, _, _, b = scores[DENOISER_LEVELS[-1]]
    chosen = winners(DENOISER_LEVELS, [s[3] for s in scores.values()])
    body = f"""The U-Net: aecore's U-Net (two pooling levels, skip connections, residual output;
{_params(ckpt)} parameters) trained with `level_sampling="uniform"`, so each training batch is
corrupted at a p drawn from U(0, {cfg.level}); {recipe} on
{ckpt.info.get("hardware", "this machine")}. The wide U-Net: the same network with twice the
channels at every stage ({_params(wide)} parameters), trained with p drawn from
U(0, {wide.config.level}) ({wide_recipe} on {wide.info.get("hardware", "this machine")}). It was
trained up to p = {wide.config.level} only, so it is scored only there ("-" above that). Best
classical: the classical method tuned per p on {VAL_IMAGES} validation images ({chosen}).
JANet-50 is trained separately at each p (section 1). Test PSNR (dB):

{table(header, rows)}

SSIM:

{table(["p", "median3", "best classical", "JANet-50", "U-Net", "wide U-Net"], ssim_rows)}

{headline} At p = 0.9, nine pixels in ten are noise: the U-Net reaches {fmt(m["test_psnr"])} dB /
SSIM {fmt(m["test_ssim"], 3)} (3x3 median: {fmt(m["test_psnr_median3"])} dB; best classical:
{fmt(b.psnr)} dB); the figure below shows what that looks like. {why}

{image("e9_best_denoiser.png", "the U-Nets against the median filter and the best classical")}"""
    title = "Beyond the classics: denoisers against the median filter and the best classical"
    return Section(9, title, body, headline)


Scores = tuple[dict[str, float], dict[str, float], dict[str, float] | None, BestClassical]


def _denoiser_scores(
    ctx: Context, ds: ImageDataset, p: float, ckpt: Checkpoint, wide: Checkpoint
) -> Scores:
    """(U-Net, JANet-50 at p, wide U-Net or None above its training range, best classical)."""
    janet = dataclasses.replace(ctx.bundled("janet50_fashion_salt_pepper"), level=p)

    def score(model: torch.nn.Module, loss: str) -> dict[str, float]:
        return evaluate(model, ds, "salt_pepper", p, loss, limit=ctx.test_limit)

    m = score(ckpt.model, ckpt.config.loss)
    j = score(ctx.fit(janet).model, "mse")
    w = score(wide.model, wide.config.loss) if p <= wide.config.level else None
    return m, j, w, ctx.best(ds, "salt_pepper", p)


def _denoiser_verdict(scores: dict[float, Scores], wide: Checkpoint) -> tuple[str, str]:
    """The headline against the issue's target (3 dB over the best classical at every TARGET
    level, met by the wide U-Net or not) and why the U-Nets win, when they do."""
    over_best = {p: scores[p][2]["test_psnr"] - scores[p][3].psnr for p in TARGET}
    worst = min(TARGET, key=over_best.get)
    levels = ", ".join(map(str, TARGET))
    listed = ", ".join(f"{over_best[p]:+.2f}" for p in TARGET)
    met = over_best[worst] >= 3.0
    headline = (
        f"The wide U-Net ({wide.config.epochs} epochs, {minutes(wide)} of training) "
        f"{'meets' if met else 'misses'} the target of 3 dB over the best tuned classical method "
        f"at every p in {{{levels}}}: its margins there are {listed} dB, the smallest "
        f"{over_best[worst]:+.2f} dB at p = {worst}."
    )
    unet_best = min(scores[p][0]["test_psnr"] - scores[p][3].psnr for p in TARGET)
    unet_median = min(scores[p][0]["test_psnr"] - scores[p][0]["test_psnr_median3"] for p in TARGET)
    headline += (
        f" The original U-Net's smallest margins there: {unet_median:+.2f} dB over the 3x3 "
        f"median, {unet_best:+.2f} dB over the best classical."
    )
    why = (
        "Why they win: the skips and the residual output let a U-Net keep every pixel it "
        "believes and repair only the ones it does not, using context from about 20 pixels "
        "around, and training over all levels taught it to tell how noisy its input is."
        if min(unet_best, over_best[worst]) > 0
        else ""
    )
    return headline, why


def _denoiser_figure(
    ctx: Context,
    ds: ImageDataset,
    ckpt: Checkpoint,
    wide: Checkpoint,
    best: dict[float, BestClassical],
) -> None:
    fig = []
    for p in (0.05, 0.2, 0.5, 0.9):
        clean, noisy = corrupted_test_set(ds, "salt_pepper", p, "cpu", limit=SHOW)
        fig += [
            (f"p = {p}", noisy),
            ("median 3x3", median_filter(noisy, 3)),
            ("best classical", classical.apply(best[p].method, noisy, best[p].params)),
            ("U-Net", reconstruct(ckpt.model, noisy)),
        ]
        if p <= wide.config.level:
            fig.append(("wide U-Net", reconstruct(wide.model, noisy)))
    save_rows(fig + [("clean", clean)], ctx.figure("e9_best_denoiser.png"))


def _params(ckpt: Checkpoint) -> str:
    return f"{sum(p.numel() for p in ckpt.model.parameters()) / 1000:.0f}k"


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
