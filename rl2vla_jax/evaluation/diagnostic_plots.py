"""The PNGs of `python -m rl2vla_jax.diagnostics` (from `diagnostics.analyse`'s result)."""

from __future__ import annotations

import os

import numpy as np


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(plt, fig, out: str, name: str, written: list[str]) -> None:
    fig.tight_layout()
    fig.savefig(os.path.join(out, name), dpi=110)
    plt.close(fig)
    written.append(name)


def write_plots(out: str, result: dict, columns: dict) -> list[str]:
    """Writes the plots that the records support; returns their file names."""
    plt = _pyplot()
    written: list[str] = []

    rows = result["by_entropy_decile"]
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    deciles = [r["decile"] for r in rows]
    axes[0].bar(deciles, [r["value_error"] for r in rows], color="tab:blue")
    axes[0].axhline(0.0, color="black", linewidth=0.8)
    axes[0].set(xlabel="entropy decile (1 = most certain)", ylabel="mean V - G", title="value error")
    axes[1].plot(deciles, [r["abs_value_error"] for r in rows], "o-", label="|V - G|")
    axes[1].plot(deciles, [r["abs_td_error"] for r in rows], "s-", label="|TD error|")
    axes[1].set(xlabel="entropy decile", title="absolute errors")
    axes[1].legend()
    _save(plt, fig, out, "error_by_entropy_decile.png", written)

    fig, ax = plt.subplots(figsize=(5, 4))
    ax.scatter(columns["descriptor"], columns["discounted_return"], s=4, alpha=0.4)
    r = result["spearman_u_return"]
    ax.set(xlabel="descriptor u", ylabel="realised discounted return G", title=f"Spearman {r['rho']:.3f}")
    _save(plt, fig, out, "descriptor_vs_return.png", written)

    training = result["over_training"]
    if len(training) > 1:
        fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
        x = [row["iteration"] for row in training]
        axes[0].plot(x, [row["explained_variance"] for row in training], "o-")
        axes[0].set(xlabel="iteration", title="explained variance")
        axes[1].plot(x, [row["advantage_variance"] for row in training], "o-", color="tab:orange")
        axes[1].set(xlabel="iteration", title="advantage variance (before normalisation)")
        _save(plt, fig, out, "explained_and_advantage_variance.png", written)

    histograms = result["entropy_histograms"]
    edges = np.asarray(histograms["edges"])
    fig, ax = plt.subplots(figsize=(6, 4))
    for category, density in histograms["categories"].items():
        ax.stairs(density, edges, label=category)
    ax.set(xlabel="mean token entropy", ylabel="density", title="entropy per OOD category")
    ax.legend()
    _save(plt, fig, out, "entropy_by_category.png", written)

    if result.get("calibration_by_setting"):
        first = columns["step"] == 0
        fig, ax = plt.subplots(figsize=(5.5, 5))
        for category in sorted(set(columns["category"][first])):
            chosen = first & (columns["category"] == category)
            ax.scatter(columns["value"][chosen], columns["discounted_return"][chosen], s=10, label=category)
        low = min(columns["value"][first].min(), columns["discounted_return"][first].min())
        high = max(columns["value"][first].max(), columns["discounted_return"][first].max())
        ax.plot([low, high], [low, high], "k--", linewidth=0.8, label="V = G")
        ax.set(xlabel="predicted V at t = 0", ylabel="realised return G_0", title="value calibration")
        ax.legend(fontsize=7)
        _save(plt, fig, out, "calibration.png", written)
    return written
