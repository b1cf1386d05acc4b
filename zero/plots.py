"""Plots of the weights mode: a heatmap per sentence, a bar chart of its final state, index.html.

matplotlib's object API on the Agg canvas (no pyplot, no display). Figures are laid out in
pixels, so every PNG has a size known in advance (`heatmap_pixels`, `bars_pixels`).
"""

import html

import matplotlib
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure

from zero.textio import atomic_write_text

DPI = 100
MAX_LABEL = 14  # characters of a token label before it is cut
LEFT, BOTTOM, TOP, GAP, RIGHT = 120, 120, 50, 30, 80  # margins in pixels (labels, colorbar)
# Weights decay geometrically along a column: a log colour scale shows how fast, down to
# this fraction of the largest weight (smaller ones get the darkest colour).
LOG_RANGE = 1e-3
CMAP = matplotlib.colormaps["viridis"].with_extremes(bad="white")  # bad: unreachable pairs


def _cell_pixels(n_tokens):
    """Pixels per token: large for short sentences, at least readable for long ones."""
    return max(12, min(28, 560 // max(n_tokens, 1)))


def heatmap_pixels(n_tokens, n_parts=1):
    """(width, height) of a heatmap PNG: one square panel of n_tokens cells per part."""
    side = n_tokens * _cell_pixels(n_tokens)
    return LEFT + n_parts * side + (n_parts - 1) * GAP + RIGHT, TOP + side + BOTTOM


def bars_pixels(n_tokens):
    """(width, height) of a final-state bar chart PNG."""
    return LEFT + max(n_tokens * _cell_pixels(n_tokens), 200) + RIGHT, TOP + 260 + BOTTOM


def _labels(tokens):
    return [t if len(t) <= MAX_LABEL else t[: MAX_LABEL - 1] + "\u2026" for t in tokens]


def _figure(width, height):
    fig = Figure(figsize=(width / DPI, height / DPI), dpi=DPI)
    FigureCanvasAgg(fig)
    return fig


def _axes(fig, width, height, left, bottom, w, h):
    """Axes at a pixel rectangle (origin bottom left)."""
    return fig.add_axes([left / width, bottom / height, w / width, h / height])


def _font(n_tokens):
    return max(6.0, min(10.0, 0.6 * _cell_pixels(n_tokens)))


def heatmap(path, mean_w, tokens, part_labels, reverse=False, title=""):
    """mean_w [L, L, P]: rows t (the state after token t), columns k (token k's value), one
    panel per part. Pairs the recurrence cannot connect (k after t in the direction of the run)
    are left blank, so the zeros that are structure are not read as weights. Log colours."""
    n, _, n_parts = mean_w.shape
    width, height = heatmap_pixels(n, n_parts)
    side = n * _cell_pixels(n)
    fig = _figure(width, height)
    t, k = np.indices((n, n))
    unreachable = k < t if reverse else k > t
    vmax = float(mean_w.max()) or 1.0
    norm = LogNorm(vmin=vmax * LOG_RANGE, vmax=vmax, clip=True)
    labels, font = _labels(tokens), _font(n)
    image = None
    for p in range(n_parts):
        ax = _axes(fig, width, height, LEFT + p * (side + GAP), BOTTOM, side, side)
        values = np.ma.masked_array(mean_w[:, :, p], unreachable)
        image = ax.imshow(values, cmap=CMAP, norm=norm, interpolation="nearest")
        ax.set_xticks(range(n), labels, rotation=90, fontsize=font)
        ax.set_yticks(range(n), labels if p == 0 else [], fontsize=font)
        ax.set_xlabel("k (token whose value is weighted)", fontsize=8)
        if p == 0:
            ax.set_ylabel("t (state after token t)", fontsize=8)
        ax.set_title(part_labels[p], fontsize=8)
    cax = _axes(fig, width, height, width - RIGHT + 12, BOTTOM, 12, side)
    fig.colorbar(image, cax=cax)
    cax.tick_params(labelsize=7, which="both")
    fig.suptitle(title, fontsize=9, y=1 - 12 / height, va="top")
    fig.savefig(path, dpi=DPI, format="png")


def final_bars(path, weights, tokens, part_labels, title=""):
    """weights [L, P]: the final state's weight on each token, parts stacked."""
    n, n_parts = weights.shape
    width, height = bars_pixels(n)
    fig = _figure(width, height)
    ax = _axes(fig, width, height, LEFT, BOTTOM, width - LEFT - RIGHT, height - TOP - BOTTOM)
    bottom = np.zeros(n)
    for p in range(n_parts):
        ax.bar(range(n), weights[:, p], bottom=bottom, label=part_labels[p])
        bottom += weights[:, p]
    ax.set_xlim(-0.5, n - 0.5)
    ax.set_xticks(range(n), _labels(tokens), rotation=90, fontsize=_font(n))
    ax.set_ylabel("mean weight over units", fontsize=8)
    ax.tick_params(axis="y", labelsize=7)
    if n_parts > 1:
        ax.legend(fontsize=7, loc="upper right")
    ax.set_title(title, fontsize=9)
    fig.savefig(path, dpi=DPI, format="png")


def write_index(path, entries, title):
    """index.html beside the images: entries [{number, text, images, npz}], paths relative to
    the page, so the directory opens in a browser from disk and can be moved as a whole."""
    parts = [
        "<!DOCTYPE html>",
        '<html><head><meta charset="utf-8">',
        f"<title>{html.escape(title)}</title>",
        "<style>body{font-family:sans-serif;margin:1.5em}img{max-width:100%;"
        "vertical-align:top;margin:0 1em 1em 0}p.src{font-family:monospace}</style>",
        "</head><body>",
        f"<h1>{html.escape(title)}</h1>",
        "<p>Row t of a heatmap is the layer's state at token t (after reading it, in the "
        "direction of the run) as a weighted sum of the tokens' value vectors: "
        "h_t = sum_k w_tk * r_k; for oLRN the state before its output gate, c_t, with "
        "h_t = o_t * c_t. Colours: w_tk averaged over hidden units, on a log scale; blank "
        "pairs are ones the recurrence cannot connect. The context-aware backward half has two "
        "panels: each token enters through its own input and through the forward state at its "
        "position. The bar chart is the row of the final state. Full vectors: the .npz "
        "files.</p>",
    ]
    for entry in entries:
        number = entry["number"]
        parts.append(f'<h2 id="line{number}">line {number}</h2>')
        parts.append(f'<p class="src">{html.escape(entry["text"])}</p>')
        parts.append("<div>")
        for image in entry["images"]:
            src = html.escape(image, quote=True)
            parts.append(f'<img src="{src}" alt="{src}">')
        parts.append("</div>")
        npz = html.escape(entry["npz"], quote=True)
        parts.append(f'<p><a href="{npz}">{npz}</a></p>')
    parts.append("</body></html>")
    atomic_write_text(path, "\n".join(parts) + "\n")
