"""What LRN attends to: the exact decomposition of an encoder layer's state into token weights.

With the identity activation an LRN step is linear in the value vectors r_k once its gates are
known: h_t = i_t*r_t + f_t*h_{t-1}. Unrolled (h before the first token is 0):

    LRN:   h_t = sum_{k<=t} w_{t,k} * r_k,   w_{t,k} = i_k * prod_{l=k+1..t} f_l
    oLRN:  c_t = i_t*r_t + f_t*h_{t-1}, h_t = o_t*c_t. What is decomposed is the internal state
           c_t = sum_{k<=t} w_{t,k} * r_k,  w_{t,k} = i_k * prod_{l=k+1..t} (o_{l-1} * f_l),
           and the layer's output is h_t = o_t * c_t (the output gate scales a whole row).

For LRN c_t = h_t. Products are element-wise (per hidden unit); r_k is the r block of the cell's
input projection LN?(x_k W) (after the cell's layer norm when cell_layer_norm is on), so it
depends only on the layer's input at position k. The gates are taken from the forward pass, so
the identity is exact, not an approximation; the weights themselves depend on the context
through the gates. tanh(...) at every step breaks the linearity: tanh is refused.

Every step, and each cell inside a step, has the form s_j = a_j*r_j + b_j*s_{j-1} (LRN: a = i,
b = f; oLRN: a = o*i, b = o*f), and a padded position carries the state (a = 0, b = 1), which
is what the runner does. The context-aware backward half of encoder layer 0 runs two cells per
position, right to left: lower on the word x_t, then higher on the forward output fw_t, so each
token k has two values (parts "x" and "fw") and the chain alternates between them.

The .npz written per sentence (L tokens, EOS included; P parts; d hidden units) holds
    cell, tokens [L], unk [L] (not in the vocabulary), parts [P], direction, layer,
    final (the row of the final state: the last token forward, the first backward),
    w [L, L, P, d]   w[t, k, p]: weight of part p's value of token k in c_t,
    r [L, P, d], i, f, o [L, P, d] (o = 1 for LRN), c [L, d] = sum_{k,p} w*r, h [L, d] = o*c
    (o of the last part), mean_w [L, L, P] (w averaged over hidden units, what the plots show).
"""

import os

import numpy as np
import tensorflow as tf

from zero import plots
from zero.errors import UserError
from zero.vocab import EOS, SPECIALS, UNK

v1 = tf.compat.v1

PART_LABELS = {
    "x": "value of the token's input r(x_k)",
    "fw": "value of the forward state r(fw_k)",
}


def check_config(config):
    """UserError unless `layer`/`direction` name an LRN or oLRN layer with identity output."""
    cell = config.cell.lower()
    if cell not in ("lrn", "olrn"):
        raise UserError(
            f"weights mode decomposes LRN and oLRN layers only; config key 'cell' is "
            f"'{config.cell}', whose recurrence is not a re-weighting of per-token values"
        )
    if config.lrn_activation != "identity":
        raise UserError(
            f"weights mode needs lrn_activation 'identity', the model has "
            f"'{config.lrn_activation}': h_t = sum_k w_tk * r_k is exact only for the identity "
            "(tanh squashes the sum at every step)"
        )
    if not 0 <= config.layer < config.num_encoder_layers:
        raise UserError(
            f"config key 'layer': {config.layer} is not an encoder layer "
            f"(0..{config.num_encoder_layers - 1})"
        )
    if config.direction == "bw" and config.layer != 0:
        raise UserError(
            f"config key 'direction': layer {config.layer} is forward only; "
            "only layer 0 has a backward half"
        )


# -- the graph: gates of every position, from the forward pass's own states ------------------


def _previous_states(out, reverse):
    """The state each step started from: the carried output one position earlier in the
    direction of the run ([B, T, d]; zeros at the start, the encoder's initial state)."""
    zeros = tf.zeros_like(out[:, :1])
    if reverse:
        return tf.concat([out[:, 1:], zeros], 1)
    return tf.concat([zeros, out[:, :-1]], 1)


def layer_gates(model, enc, layer, direction):
    """Gate tensors [B, T, d] of an encoder layer half -> ([(part, gates dict)], outputs).

    Each cell's `gates` is evaluated on all positions at once, fed the states the loop carried
    (the layer's outputs shifted by one), so the numbers are those of the forward pass.
    """
    with model.var_scope():  # the model's settings (precision of the products) apply here too
        return _layer_gates(model, enc["layers"][layer], layer, direction)


def _layer_gates(model, taps, layer, direction):
    if direction == "fw":
        cell = model.enc_fw if layer == 0 else model.enc_layers[layer - 1]
        out = taps["fw"]
        return [("x", cell.gates(cell.project(taps["input"]), _previous_states(out, False)))], out
    out = taps["bw"]
    prev = _previous_states(out, True)
    if not model.config.context_aware:
        cell = model.enc_bw
        return [("x", cell.gates(cell.project(taps["input"]), prev))], out
    lower, higher = model.enc_bw.lower, model.enc_bw.higher
    g_lower = lower.gates(lower.project(taps["input"]), prev)
    g_higher = higher.gates(higher.project(taps["fw"]), g_lower["h"])
    return [("x", g_lower), ("fw", g_higher)], out


# -- the decomposition (numpy) ---------------------------------------------------------------


def decompose(parts, mask, reverse=False):
    """One sentence: parts [(name, {i, f, r[, o]: [T, d]})] in the order the cells run within a
    step, mask [T] (1 token, 0 padding), reverse for a right-to-left run.

    Returns a dict over the token positions (L of them): w [L, L, P, d], r/i/f/o [L, P, d],
    c [L, d] (= sum of w*r), h [L, d] (= o*c).
    """
    mask = np.asarray(mask) > 0
    n_steps, n_parts = len(mask), len(parts)
    order = slice(None, None, -1) if reverse else slice(None)

    def stacked(key):  # [T, P, d] in processing order
        values = [g[key] if key in g else np.ones_like(g["i"]) for _, g in parts]
        return np.stack(values, 1)[order].astype(np.float64)

    i, f, o, r = stacked("i"), stacked("f"), stacked("o"), stacked("r")
    m = mask[order][:, None, None]
    a = np.where(m, o * i, 0.0).reshape(n_steps * n_parts, -1)  # s_j = a_j*r_j + b_j*s_{j-1}
    b = np.where(m, o * f, 1.0).reshape(n_steps * n_parts, -1)
    d = a.shape[-1]
    row = np.zeros((n_steps * n_parts, d))  # weights of s_{j-1} over every value
    w = np.zeros((n_steps, n_steps * n_parts, d))
    for j in range(n_steps * n_parts):
        t, p = divmod(j, n_parts)
        if p == n_parts - 1:  # the step's last cell: c_t = i*r + f*s_{j-1}
            w[t] = f[t, p] * row
            w[t, j] += i[t, p]
        row *= b[j]
        row[j] = a[j]
    w = w.reshape(n_steps, n_steps, n_parts, d)[order][:, order]
    tokens = np.flatnonzero(mask)
    w = w[tokens][:, tokens]
    back = {k: v[order][tokens] for k, v in (("i", i), ("f", f), ("o", o), ("r", r))}
    c = np.einsum("tkpd,kpd->td", w, back["r"])
    return {**back, "w": w, "c": c, "h": back["o"][:, -1] * c}


# -- on a model ------------------------------------------------------------------------------


class Probe:
    """The decomposition of one encoder layer half, built on a model: `run` gives, for each
    sentence of a batch of source ids, decompose()'s result and how far the reconstruction is
    from the layer's real output (float32 rounding of the forward pass)."""

    def __init__(self, model, config):
        self.reverse = config.direction == "bw"
        self.src = v1.placeholder(tf.int32, [None, None], name="weights_src")
        enc = model.encode(self.src, training=False)
        parts, out = layer_gates(model, enc, config.layer, config.direction)
        self.names = [name for name, _ in parts]
        self.fetch = {"parts": [g for _, g in parts], "out": out, "mask": enc["mask"]}

    def run(self, sess, src):
        got = sess.run(self.fetch, {self.src: src})
        results = []
        for row in range(src.shape[0]):
            sentence = [
                (name, {k: v[row] for k, v in g.items()})
                for name, g in zip(self.names, got["parts"], strict=True)
            ]
            mask = got["mask"][row]
            result = decompose(sentence, mask, reverse=self.reverse)
            gap = float(np.abs(result["h"] - got["out"][row][mask > 0]).max())
            results.append((result, gap))
        return results


# -- the mode --------------------------------------------------------------------------------


def sentence_record(result, line, ids, parts, config):
    tokens = line.split() + [SPECIALS[EOS]]
    final = 0 if config.direction == "bw" else len(tokens) - 1
    record = {
        "cell": config.cell.lower(),
        "tokens": np.array(tokens),
        "unk": ids[: len(tokens)] == UNK,
        "parts": np.array(parts),
        "direction": config.direction,
        "layer": config.layer,
        "final": final,
        "mean_w": result["w"].mean(-1).astype(np.float32),
    }
    record.update({k: v.astype(np.float32) for k, v in result.items()})
    return record


def write_sentence(out_dir, number, line, record):
    """The .npz and both plots of one sentence -> its index entry (paths relative)."""
    stem = f"sentence_{number:04d}"
    np.savez_compressed(os.path.join(out_dir, stem + ".npz"), **record)
    tokens = [
        t + " (unk)" if u else t for t, u in zip(record["tokens"], record["unk"], strict=True)
    ]
    parts = list(record["parts"])
    labels = [PART_LABELS[p] for p in parts]
    what = "c_t" if record["cell"] == "olrn" else "h_t"
    heatmap = stem + "_heatmap.png"
    plots.heatmap(
        os.path.join(out_dir, heatmap),
        record["mean_w"],
        tokens,
        labels,
        reverse=record["direction"] == "bw",
        title=f"line {number}: weight of token k in {what} (mean over units, log colours)",
    )
    final = stem + "_final.png"
    plots.final_bars(
        os.path.join(out_dir, final),
        record["mean_w"][record["final"]],
        tokens,
        labels,
        title=f"line {number}: weights in the final state ({tokens[record['final']]})",
    )
    return {"number": number, "text": line, "images": [heatmap, final], "npz": stem + ".npz"}
