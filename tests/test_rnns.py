"""rnns/: cells, runners and attention against straightforward numpy versions of docs/DESIGN.md."""

import numpy as np
import pytest
import tensorflow as tf

import rnns
from rnns import ops
from rnns.attention import mask_bias

v1 = tf.compat.v1

D_IN, D, D_MEM = 5, 4, 6
NAMES = ["lrn", "olrn", "gru", "lstm", "atr", "sru"]


# -- numpy reference (written from docs/DESIGN.md, "Recurrent cells") ------------------------------


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def np_ln(x, w, name, blocks):
    """LN? of x per d-wide block, parameters w[name/gain], w[name/offset]; identity if absent."""
    if name + "/gain" not in w:
        return x
    parts = np.split(x, blocks, axis=-1)
    normed = [
        (p - p.mean(-1, keepdims=True)) / np.sqrt(p.var(-1, keepdims=True) + 1e-6) for p in parts
    ]
    return np.concatenate(normed, -1) * w[name + "/gain"] + w[name + "/offset"]


def np_step(name, w, x, state, activation="identity"):
    """One step of cell `name` from the raw input x [B, d_in] (projection included)."""
    g = np.tanh if activation == "tanh" else (lambda a: a)
    d = D
    if name == "lrn":
        p, q, r = np.split(np_ln(x @ w["W"], w, "ln_W", 3), 3, -1)
        h = state
        i, f = sigmoid(p + h), sigmoid(q - h)
        return g(i * r + f * h)
    if name == "olrn":
        p, q, r, s = np.split(np_ln(x @ w["W"], w, "ln_W", 4), 4, -1)
        h = state
        i, f = sigmoid(p + h), sigmoid(q - h)
        c = g(i * r + f * h)
        return sigmoid(s - c + w.get("b_o", 0.0)) * c
    if name == "atr":
        p = np_ln(x @ w["W"], w, "ln_W", 1)
        h = state
        q = np_ln(h @ w["U"], w, "ln_U", 1) + w["b"]
        i, f = sigmoid(p + q), sigmoid(p - q)
        return i * p + f * h
    if name == "sru":
        x_r, x_f, x_c, x_h = np.split(np_ln(x @ w["W"], w, "ln_W", 4), 4, -1)
        c = state[:, d:]
        f = sigmoid(x_f + w["v_f"] * c)
        c_t = f * c + (1 - f) * x_c
        r = sigmoid(x_r + w["v_r"] * c)
        h_t = r * c_t + (1 - r) * x_h
        return np.concatenate([h_t, c_t], -1)
    if name == "gru":
        x_g, x_h = (x @ w["W"])[:, : 2 * d], (x @ w["W"])[:, 2 * d :]
        h = state
        zr = sigmoid(x_g + np_ln(h @ w["U_g"], w, "ln_U_g", 2) + w["b_g"])
        z, r = zr[:, :d], zr[:, d:]
        h_tilde = np.tanh(x_h + np_ln((r * h) @ w["U_h"], w, "ln_U_h", 1) + w["b_h"])
        return z * h + (1 - z) * h_tilde
    if name == "lstm":
        x_g, x_c = (x @ w["W"])[:, : 3 * d], (x @ w["W"])[:, 3 * d :]
        h, c = state[:, :d], state[:, d:]
        gates = sigmoid(x_g + np_ln(h @ w["U_g"], w, "ln_U_g", 3) + w["b"])
        i, f, o = gates[:, :d], gates[:, d : 2 * d], gates[:, 2 * d :]
        c_tilde = np.tanh(x_c + np_ln(h @ w["U_c"], w, "ln_U_c", 1) + w["b_c"])
        c_t = i * c_tilde + f * c
        return np.concatenate([o * np.tanh(c_t), c_t], -1)
    raise AssertionError(name)


def np_attention(w, query, memory, memory_mask, heads):
    q = query @ w["W_q"] + w["b_q"]
    hidden = np.tanh(memory @ w["W_k"] + q[:, None, :])  # [B, S, d]
    contexts, all_weights = [], []
    for hd, hm, vh in zip(
        np.split(hidden, heads, -1),
        np.split(memory, heads, -1),
        np.split(w["v"], heads),
        strict=True,
    ):
        scores = hd @ vh + w["b_v"]
        scores = np.where(memory_mask > 0, scores, -1e9)
        weights = np.exp(scores - scores.max(-1, keepdims=True))
        weights /= weights.sum(-1, keepdims=True)
        contexts.append(np.einsum("bs,bsd->bd", weights, hm))
        all_weights.append(weights)
    return np.concatenate(contexts, -1), np.stack(all_weights, 1)


def np_run(step, mask, state, reverse):
    """Runs step(t, state) -> (new_state, context) with masking.

    Returns (outputs, contexts, final state)."""
    B, T = mask.shape
    outputs, contexts = np.zeros((B, T, D)), [None] * T
    for t in reversed(range(T)) if reverse else range(T):
        new, contexts[t] = step(t, state)
        m = mask[:, t : t + 1]
        state = m * new + (1 - m) * state
        outputs[:, t] = state[:, :D]
    return outputs, contexts, state


# -- helpers ------------------------------------------------------------------------------


def randomize(sess, seed=0):
    """Random values for every variable (biases, gains and offsets included); returns them by
    their name relative to the cell/attention scope."""
    rng = np.random.RandomState(seed)
    values = {}
    for var in v1.global_variables():
        value = rng.uniform(-0.6, 0.6, var.shape).astype(np.float32)
        if var.name.endswith("gain:0"):
            value += 1.0
        var.load(value, sess)
        values[var.name[:-2]] = value
    return values


def scoped(values, scope):
    return {k[len(scope) + 1 :]: v for k, v in values.items() if k.startswith(scope + "/")}


def batch(seed=1, B=3, T=6, lengths=(6, 4, 1), d_in=D_IN):
    rng = np.random.RandomState(seed)
    x = rng.randn(B, T, d_in).astype(np.float32)
    mask = np.zeros((B, T), np.float32)
    for b, n in enumerate(lengths):
        mask[b, :n] = 1
    return x, mask


def placeholders(d_in=D_IN):
    return v1.placeholder(tf.float32, [None, None, d_in]), v1.placeholder(tf.float32, [None, None])


# -- cells ------------------------------------------------------------------------------


CELL_CASES = [(n, ln, "identity") for n in NAMES for ln in (False, True)] + [
    ("lrn", False, "tanh"),
    ("lrn", True, "tanh"),
    ("olrn", False, "tanh"),
    ("olrn", True, "output_bias"),
]


@pytest.mark.parametrize("name,layer_norm,activation", CELL_CASES)
def test_cell_matches_numpy(graph, name, layer_norm, activation):
    options = {"activation": activation} if name in ("lrn", "olrn") else {}
    if activation == "output_bias":  # oLRN's b_o (random here, as every weight)
        options = {"output_bias": 2.0}
    cell = rnns.get_cell(name, D, layer_norm=layer_norm, **options)
    x_ph, m_ph = placeholders()
    s_ph = v1.placeholder(tf.float32, [None, cell.state_size])
    runs = {
        rev: rnns.rnn(cell, x_ph, m_ph, initial_state=s_ph, reverse=rev) for rev in (False, True)
    }
    x, mask = batch()
    state0 = np.random.RandomState(2).uniform(-1, 1, (3, cell.state_size)).astype(np.float32)
    with v1.Session() as sess:
        w = scoped(randomize(sess), name)
        for reverse, run in runs.items():
            out, final = sess.run(run, {x_ph: x, m_ph: mask, s_ph: state0})
            ref_out, _, ref_final = np_run(
                lambda t, s: (np_step(name, w, x[:, t], s, activation), None),  # noqa: B023
                mask,
                state0,
                reverse,
            )
            np.testing.assert_allclose(out, ref_out, atol=2e-5, err_msg=f"reverse={reverse}")
            np.testing.assert_allclose(final, ref_final, atol=2e-5, err_msg=f"reverse={reverse}")
            # Padding carries the state: the output at a padded position is the carried h.
            if not reverse:
                np.testing.assert_array_equal(out[2, 1:], np.repeat(out[2, :1], 5, 0))
            else:
                np.testing.assert_allclose(out[2, 1:], np.repeat(state0[2:3, :D], 5, 0))


def test_lrn_activation_changes_output(graph):
    x_ph, m_ph = placeholders()
    outs = [
        rnns.rnn(rnns.get_cell("lrn", D, activation=a, scope="lrn"), x_ph, m_ph)[0]
        for a in ("identity", "tanh")
    ]
    x, mask = batch()
    with v1.Session() as sess:
        randomize(sess)
        ident, tanh = sess.run(outs, {x_ph: x, m_ph: mask})
    # Same weights, different g: from a zero state the first step is g(i*r) in both; after that
    # the trajectories differ.
    np.testing.assert_allclose(np.tanh(ident[:, 0]), tanh[:, 0], atol=1e-6)
    assert np.abs(ident[0, 1:] - tanh[0, 1:]).max() > 1e-3


@pytest.mark.parametrize("name", NAMES)
def test_padding_invariance(graph, name):
    """A padded batch gives the outputs and final states of each sequence run alone."""
    cell = rnns.get_cell(name, D)
    x_ph, m_ph = placeholders()
    runs = {rev: rnns.rnn(cell, x_ph, m_ph, reverse=rev) for rev in (False, True)}
    x, mask = batch(lengths=(6, 3, 1))
    with v1.Session() as sess:
        randomize(sess)
        for run in runs.values():
            out, final = sess.run(run, {x_ph: x, m_ph: mask})
            for b, n in enumerate([6, 3, 1]):
                alone = {x_ph: x[b : b + 1, :n], m_ph: np.ones((1, n))}
                out_b, final_b = sess.run(run, alone)
                np.testing.assert_allclose(out[b : b + 1, :n], out_b, atol=1e-6)
                np.testing.assert_allclose(final[b : b + 1], final_b, atol=1e-6)


def param_formula(name, d_in, d):
    return {
        "lrn": 3 * d_in * d,
        "olrn": 4 * d_in * d,
        "atr": d_in * d + d * d + d,
        "sru": 4 * d_in * d + 2 * d,
        "gru": 3 * d_in * d + 3 * d * d + 3 * d,
        "lstm": 4 * d_in * d + 4 * d * d + 4 * d,
    }[name]


# Extra layer-norm parameters: gain + offset for every normalised d-wide block.
LN_BLOCKS = {"lrn": 3, "olrn": 4, "atr": 2, "sru": 4, "gru": 3, "lstm": 4}


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("d_in,d", [(5, 4), (7, 3)])
def test_parameter_counts(graph, name, d_in, d):
    for layer_norm in (False, True):
        cell = rnns.get_cell(name, d, layer_norm=layer_norm, scope=f"{name}_{layer_norm}")
        cell.build(d_in)
        count = sum(v.shape.num_elements() for v in v1.trainable_variables(cell.scope + "/"))
        expected = param_formula(name, d_in, d) + layer_norm * 2 * LN_BLOCKS[name] * d
        assert count == cell.num_params() == expected


VARIABLES = {
    "lrn": {"W": [D_IN, 3 * D]},
    "olrn": {"W": [D_IN, 4 * D]},
    "atr": {"W": [D_IN, D], "U": [D, D], "b": [D]},
    "sru": {"W": [D_IN, 4 * D], "v_f": [D], "v_r": [D]},
    "gru": {"W": [D_IN, 3 * D], "U_g": [D, 2 * D], "U_h": [D, D], "b_g": [2 * D], "b_h": [D]},
    "lstm": {"W": [D_IN, 4 * D], "U_g": [D, 3 * D], "U_c": [D, D], "b": [3 * D], "b_c": [D]},
}


@pytest.mark.parametrize("name", NAMES)
def test_variable_names_and_initialisation(graph, name):
    """Checkpoint-readable names, uniform(-0.08, 0.08) weights, zero biases, and nothing is
    created inside the loop (running twice reuses the variables)."""
    cell = rnns.get_cell(name, D)
    x_ph, m_ph = placeholders()
    with v1.variable_scope("encoder"):
        rnns.rnn(cell, x_ph, m_ph)
        rnns.rnn(cell, x_ph, m_ph, reverse=True)
    found = {v.name[len(f"encoder/{name}/") : -2]: v.shape.as_list() for v in v1.global_variables()}
    assert found == VARIABLES[name]
    with v1.Session() as sess:
        sess.run(v1.global_variables_initializer())
        for var in v1.global_variables():
            value = sess.run(var)
            if var.name.split("/")[-1].startswith("b"):
                assert not value.any()
            else:
                assert 0 < np.abs(value).max() <= 0.08


def test_layer_norm_variables(graph):
    cell = rnns.get_cell("gru", D, layer_norm=True)
    cell.build(D_IN)
    names = {v.name[4:-2]: v.shape.as_list() for v in v1.global_variables()}
    assert names["ln_U_g/gain"] == [2 * D] and names["ln_U_h/offset"] == [D]
    assert "ln_W/gain" not in names
    cell = rnns.get_cell("lrn", D, layer_norm=True)
    cell.build(D_IN)
    assert {v.name for v in v1.global_variables() if v.name.startswith("lrn/")} == {
        "lrn/W:0",
        "lrn/ln_W/gain:0",
        "lrn/ln_W/offset:0",
    }


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("layer_norm", [False, True])
def test_gradients_reach_every_variable(graph, name, layer_norm):
    cell = rnns.get_cell(name, D, layer_norm=layer_norm)
    x_ph, m_ph = placeholders()
    out, final = rnns.rnn(cell, x_ph, m_ph, reverse=True)
    loss = tf.reduce_sum(out**2) + tf.reduce_sum(final)
    variables = v1.trainable_variables()
    grads = tf.gradients(loss, variables)
    assert all(g is not None for g in grads)
    x, mask = batch()
    with v1.Session() as sess:
        randomize(sess)
        for var, g in zip(variables, sess.run(grads, {x_ph: x, m_ph: mask}), strict=True):
            assert np.abs(g).max() > 0, var.name


def plain_dense(x, w, b=None, w_t=None):
    """TF's own MatMul (and its gradient), to check ops.matmul's hand-written gradient."""
    y = tf.matmul(x, w)
    return y if b is None else tf.nn.bias_add(y, b)


def grads_both_ways(monkeypatch, build_loss):
    """Gradients of build_loss() w.r.t. every variable, with ops' gradient and with TF's."""
    fast = build_loss()
    monkeypatch.setattr(ops, "_dense", plain_dense)
    plain = build_loss()
    variables = v1.trainable_variables()
    return tf.gradients(fast, variables), tf.gradients(plain, variables), variables


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("layer_norm", [False, True])
def test_gradients_equal_tf_autodiff(graph, monkeypatch, name, layer_norm):
    cell = rnns.get_cell(name, D, layer_norm=layer_norm)
    x, mask = batch()
    x_var = v1.get_variable("x", initializer=x)  # the input's gradient is checked too

    def loss():
        out, final = rnns.rnn(cell, x_var, mask, reverse=True)
        return tf.reduce_sum(out * np.linspace(-1, 1, D)) + tf.reduce_sum(final**2)

    fast, plain, variables = grads_both_ways(monkeypatch, loss)
    with v1.Session() as sess:
        randomize(sess)
        for var, a, b in zip(variables, *sess.run([fast, plain]), strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6, err_msg=var.name)


def test_cond_rnn_gradients_equal_tf_autodiff(graph, monkeypatch):
    cond = make_cond("lstm", 2, layer_norm=True)
    x, mask = batch()
    memory, memory_mask = batch(seed=3, T=5, lengths=(5, 2, 3), d_in=D_MEM)
    memory_var = v1.get_variable("memory", initializer=memory)

    def loss():
        out, ctx, _ = cond(x, mask, memory_var, memory_mask)
        return tf.reduce_sum(out * np.linspace(-1, 1, D)) + tf.reduce_sum(ctx**2)

    fast, plain, variables = grads_both_ways(monkeypatch, loss)
    with v1.Session() as sess:
        randomize(sess)
        for var, a, b in zip(variables, *sess.run([fast, plain]), strict=True):
            if var.name != "attention/b_v:0":  # no gradient either way (softmax shift)
                np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5, err_msg=var.name)


# -- factory --------------------------------------------------------------------------------


def test_get_cell_names_are_case_insensitive():
    for name, cls in [("LRN", rnns.lrn.LRN), ("oLRN", rnns.olrn.OLRN), ("Gru", rnns.gru.GRU)]:
        cell = rnns.get_cell(name, 8)
        assert type(cell) is cls and cell.scope == name.lower() and cell.hidden_size == 8
    assert set(rnns.CELLS) == set(NAMES)
    assert rnns.get_cell("lstm", 8).state_size == 16 and rnns.get_cell("sru", 8).state_size == 16
    assert rnns.get_cell("gru", 8, scope="dec").scope == "dec"


def test_get_cell_unknown_name():
    with pytest.raises(ValueError) as err:
        rnns.get_cell("lnr", 8)
    message = str(err.value)
    assert "'lrn'" in message.split("did you mean")[1]
    for name in NAMES:
        assert name in message
    with pytest.raises(ValueError, match="did you mean 'lstm'"):
        rnns.get_cell("lstn", 8)


def test_get_cell_bad_options():
    with pytest.raises(ValueError, match="activation"):
        rnns.get_cell("gru", 8, activation="tanh")
    with pytest.raises(ValueError, match="identity"):
        rnns.get_cell("lrn", 8, activation="relu")
    with pytest.raises(ValueError, match="unknown cell options"):
        rnns.get_cell("lrn", 8, dropout=0.1)


def test_initializer_option(graph):
    cell = rnns.get_cell("atr", D, initializer=v1.constant_initializer(0.5))
    cell.build(D_IN)
    with v1.Session() as sess:
        sess.run(v1.global_variables_initializer())
        assert (sess.run(cell.W) == 0.5).all() and not sess.run(cell.b).any()


# -- conditional RNN and attention ------------------------------------------------------------


def make_cond(name, heads, layer_norm=False):
    lower = rnns.get_cell(name, D, layer_norm=layer_norm, scope="lower")
    higher = rnns.get_cell(name, D, layer_norm=layer_norm, scope="higher")
    attention = rnns.AdditiveAttention(D, num_heads=heads) if heads else None
    return rnns.CondRNN(lower, higher, attention)


def np_cond(name, w, heads, x, mask, memory, memory_mask, state0, reverse):
    lower, higher, att = scoped(w, "lower"), scoped(w, "higher"), scoped(w, "attention")

    def step(t, state):
        s = np_step(name, lower, x[:, t], state)
        if heads:
            context, _ = np_attention(att, s[:, :D], memory, memory_mask, heads)
        else:
            context = memory[:, t]
        return np_step(name, higher, context, s), context

    return np_run(step, mask, state0, reverse)


COND_CASES = [("gru", 1), ("gru", 2), ("gru", 0), ("lstm", 1), ("lrn", 2), ("lrn", 0), ("sru", 0)]


@pytest.mark.parametrize("name,heads", COND_CASES)
def test_cond_rnn_matches_numpy(graph, name, heads):
    cond = make_cond(name, heads)
    x_ph, m_ph = placeholders()
    mem_ph, mm_ph = placeholders(D_MEM)
    s_ph = v1.placeholder(tf.float32, [None, cond.state_size])
    runs = {
        rev: cond(x_ph, m_ph, mem_ph, mm_ph if heads else None, initial_state=s_ph, reverse=rev)
        for rev in (False, True)
    }
    x, mask = batch()
    if heads:
        memory, memory_mask = batch(seed=3, T=5, lengths=(5, 2, 3), d_in=D_MEM)
    else:
        memory, memory_mask = batch(seed=3, d_in=D_MEM)[0], mask
    state0 = np.random.RandomState(2).uniform(-1, 1, (3, cond.state_size)).astype(np.float32)
    feed = {x_ph: x, m_ph: mask, mem_ph: memory, mm_ph: memory_mask, s_ph: state0}
    with v1.Session() as sess:
        w = randomize(sess)
        for reverse, run in runs.items():
            out, contexts, final = sess.run(run, feed)
            ref_out, ref_ctx, ref_final = np_cond(
                name, w, heads, x, mask, memory, memory_mask, state0, reverse
            )
            np.testing.assert_allclose(out, ref_out, atol=2e-5)
            np.testing.assert_allclose(final, ref_final, atol=2e-5)
            # Contexts are compared where they matter: at real positions.
            real = mask > 0
            np.testing.assert_allclose(contexts[real], np.stack(ref_ctx, 1)[real], atol=2e-5)


STEP_CASES = [(n, 1, False) for n in NAMES] + [
    ("lstm", 2, False),
    ("gru", 0, False),
    ("lrn", 0, False),
    ("gru", 1, True),
    ("lstm", 0, True),
    ("lrn", 2, True),
]


@pytest.mark.parametrize("name,heads,layer_norm", STEP_CASES)
def test_cond_rnn_step_equals_call(graph, name, heads, layer_norm):
    """Stepping one position at a time (beam search) gives the numbers of the whole run.

    Same ops in the same order; only float rounding may differ, because oneDNN and Eigen pick
    kernels by shape (the run projects T*B rows at once, a step B rows). Without layer norm the
    results are bitwise equal; LN's reductions differ in the last bit, and a GRU carries that
    through its six steps (measured up to 7e-6 on an AMD EPYC, 2026-11).
    """
    cond = make_cond(name, heads, layer_norm)
    x, mask = batch(lengths=(6, 6, 6))
    memory, memory_mask = batch(seed=3, T=5 if heads else 6, lengths=(5, 2, 3), d_in=D_MEM)
    memory_mask = memory_mask if heads else None
    outs, ctxs, final = cond(tf.constant(x), tf.constant(mask), tf.constant(memory), memory_mask)
    cache = cond.precompute(tf.constant(memory), memory_mask) if heads else None
    state = cond.zero_state(3)
    stepped = []
    for t in range(6):
        memory_t = None if heads else tf.constant(memory[:, t])
        out, ctx, state, _ = cond.step(tf.constant(x[:, t]), state, cache=cache, memory_t=memory_t)
        stepped.append((out, ctx))
    n_vars = len(v1.global_variables())
    with v1.Session() as sess:
        randomize(sess)
        whole, steps, last = sess.run([(outs, ctxs), stepped, state])
    assert len(v1.global_variables()) == n_vars
    for t, (out, ctx) in enumerate(steps):
        tol = 1e-5 if layer_norm else 1e-6
        np.testing.assert_allclose(out, whole[0][:, t], rtol=tol, atol=tol)
        np.testing.assert_allclose(ctx, whole[1][:, t], rtol=tol, atol=tol)
    np.testing.assert_allclose(last[:, :D], whole[0][:, -1], atol=tol)


@pytest.mark.parametrize(
    "name,heads,layer_norm,beam",
    [("lrn", 1, True, None), ("gru", 1, False, 2), ("lstm", 2, False, None), ("sru", 2, True, 2)],
)
def test_projected_memory_step_equals_plain_step(graph, name, heads, layer_norm, beam):
    """A step whose cache holds the memory times the higher cells' W (precompute's
    project_for) gives the numbers of a plain step, for its own higher cell and for an aligned
    layer above it fed the projection it returns; with heads, and with K queries per memory."""
    cond = make_cond(name, heads, layer_norm)
    above = rnns.CondRNN(
        rnns.get_cell(name, D, layer_norm=layer_norm, scope="above_lower"),
        rnns.get_cell(name, D, layer_norm=layer_norm, scope="above_higher"),
    )
    k = beam or 1
    x, _ = batch(lengths=(6, 6, 6))
    memory, memory_mask = batch(seed=3, T=5, lengths=(5, 2, 3), d_in=D_MEM)
    rng = np.random.RandomState(4)
    rows = 3 * k
    x_t = tf.constant(np.repeat(x[:, 0], k, axis=0))
    x_above = tf.constant(rng.uniform(-1, 1, (rows, D)).astype(np.float32))
    states = [
        tf.constant(rng.uniform(-1, 1, (rows, c.state_size)).astype(np.float32))
        for c in (cond, above)
    ]
    above.build(D, D_MEM)
    outputs = {}
    for projected in (False, True):
        project_for = [cond.higher, above.higher] if projected else None
        cache = cond.precompute(tf.constant(memory), memory_mask, project_for)
        out, ctx, state, proj = cond.step(x_t, states[0], cache=cache, beam=beam)
        assert (proj is None) != projected
        # Given the projection, the layer above must not need the context itself.
        memory_t = tf.zeros_like(ctx) if projected else ctx
        out2, _, state2, _ = above.step(x_above, states[1], memory_t=memory_t, memory_proj=proj)
        outputs[projected] = (out, ctx, state, out2, state2)
    # The layer's own higher cell reads the values too: without them its output changes.
    zeroed = {**cache, "values": tf.zeros_like(cache["values"])}
    out_zeroed = cond.step(x_t, states[0], cache=zeroed, beam=beam)[0]
    with v1.Session() as sess:
        randomize(sess)
        plain, projected = sess.run(outputs[False]), sess.run(outputs[True])
        changed = sess.run(out_zeroed)
    for a, b in zip(plain, projected, strict=True):
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-5)
    assert np.abs(changed - plain[0]).max() > 1e-3


def test_cond_rnn_gradients_and_params(graph):
    cond = make_cond("gru", 2)
    x_ph, m_ph = placeholders()
    mem_ph, mm_ph = placeholders(D_MEM)
    out, ctx, final = cond(x_ph, m_ph, mem_ph, mm_ph)
    variables = v1.trainable_variables()
    names = sorted(v.name[:-2] for v in variables)
    assert [n for n in names if n.startswith("attention/")] == [
        "attention/W_k",
        "attention/W_q",
        "attention/b_q",
        "attention/b_v",
        "attention/v",
    ]
    n_att = sum(v.shape.num_elements() for v in variables if v.name.startswith("attention/"))
    assert n_att == D_MEM * D + D * D + D + D + 1
    n_higher = sum(v.shape.num_elements() for v in variables if v.name.startswith("higher/"))
    assert n_higher == param_formula("gru", D_MEM, D)
    grads = tf.gradients(tf.reduce_sum(out**2) + tf.reduce_sum(ctx), variables)
    x, mask = batch()
    memory, memory_mask = batch(seed=3, T=5, lengths=(5, 2, 3), d_in=D_MEM)
    with v1.Session() as sess:
        randomize(sess)
        feed = {x_ph: x, m_ph: mask, mem_ph: memory, mm_ph: memory_mask}
        for var, g in zip(variables, sess.run(grads, feed), strict=True):
            # b_v shifts every score equally: softmax ignores it, its gradient is 0.
            assert var.name == "attention/b_v:0" or np.abs(g).max() > 0, var.name


@pytest.mark.parametrize("heads", [1, 2])
def test_attention_matches_numpy(graph, heads):
    att = rnns.AdditiveAttention(D, num_heads=heads)
    memory, memory_mask = batch(seed=3, T=5, lengths=(5, 2, 3), d_in=D_MEM)
    query = np.random.RandomState(4).randn(3, D).astype(np.float32)
    keys = att.precompute_keys(tf.constant(memory))
    ctx, weights = att(tf.constant(query), keys, tf.constant(memory), tf.constant(memory_mask))
    assert weights.shape.rank == (2 if heads == 1 else 3)
    with v1.Session() as sess:
        w = scoped(randomize(sess), "attention")
        ctx, weights = sess.run([ctx, weights])
    ref_ctx, ref_weights = np_attention(w, query, memory, memory_mask, heads)
    np.testing.assert_allclose(ctx, ref_ctx, atol=1e-5)
    np.testing.assert_allclose(weights, ref_weights[:, 0] if heads == 1 else ref_weights, atol=1e-6)
    assert not weights[1][..., 2:].any()  # masked memory positions get no weight


@pytest.mark.parametrize("heads", [1, 2])
def test_attention_with_k_queries_per_memory_matches_numpy(graph, heads):
    """query [B, K, d] (a beam's hypotheses reading one untiled memory): each of the K queries
    gets what numpy gives it alone against its sentence's memory and mask."""
    k = 3
    att = rnns.AdditiveAttention(D, num_heads=heads)
    memory, memory_mask = batch(seed=3, T=5, lengths=(5, 2, 3), d_in=D_MEM)
    query = np.random.RandomState(5).randn(3, k, D).astype(np.float32)
    keys = att.precompute_keys(tf.constant(memory))
    bias = mask_bias(tf.constant(memory_mask))
    ctx, weights = att(tf.constant(query), keys, tf.constant(memory), bias=bias)
    with v1.Session() as sess:
        w = scoped(randomize(sess), "attention")
        ctx, weights = sess.run([ctx, weights])
    assert ctx.shape == (3, k, D_MEM)
    for j in range(k):
        ref_ctx, ref_weights = np_attention(w, query[:, j], memory, memory_mask, heads)
        np.testing.assert_allclose(ctx[:, j], ref_ctx, atol=1e-5)
        ref = ref_weights[:, 0] if heads == 1 else ref_weights
        np.testing.assert_allclose(weights[:, j], ref, atol=1e-6)


# -- ops ------------------------------------------------------------------------------------


def test_linear_and_layer_norm(graph):
    x = np.random.RandomState(0).randn(2, 3, D_IN).astype(np.float32)
    y = ops.linear(tf.constant(x), 7, "proj")
    y2 = ops.linear(tf.constant(x[0]), 7, "proj")  # rank 2, same variables
    z = ops.layer_norm(tf.constant(x), "norm")
    assert y.shape.as_list() == [2, 3, 7] and len(v1.global_variables()) == 4
    with v1.Session() as sess:
        w = randomize(sess)
        y, y2, z = sess.run([y, y2, z])
    np.testing.assert_allclose(y, x @ w["proj/W"] + w["proj/b"], atol=1e-5)
    np.testing.assert_allclose(y2, y[0], atol=1e-6)
    np.testing.assert_allclose(z, np_ln(x, w, "norm", 1), atol=1e-5)


@pytest.mark.parametrize("blocks", [1, 3])
def test_layer_norm_gradient_matches_numpy(graph, blocks):
    """normalize's closed-form gradient against central differences of the numpy layer norm
    (float64), for the input, the gain and the offset."""
    rng = np.random.RandomState(2)
    x = rng.randn(4, 3 * D).astype(np.float32)
    x[1] *= 30.0  # a row with a large scale: the gradient shrinks with it
    w = {"n/gain": rng.uniform(0.5, 1.5, 3 * D), "n/offset": rng.randn(3 * D)}
    weights = rng.randn(4, 3 * D)

    def objective(x, gain, offset):
        return float((np_ln(x, {"n/gain": gain, "n/offset": offset}, "n", blocks) * weights).sum())

    args = [x.astype(np.float64), w["n/gain"], w["n/offset"]]
    expected = []
    for i, a in enumerate(args):
        grad = np.zeros_like(a)
        for j in np.ndindex(a.shape):
            up, down = [b.copy() for b in args], [b.copy() for b in args]
            up[i][j] += 1e-5
            down[i][j] -= 1e-5
            grad[j] = (objective(*up) - objective(*down)) / 2e-5
        expected.append(grad)
    tensors = [tf.constant(a, tf.float32) for a in args]
    y = ops.normalize(*tensors, blocks=blocks)
    got = tf.gradients(tf.reduce_sum(y * weights.astype(np.float32)), tensors)
    with v1.Session() as sess:
        y, got = sess.run([y, got])
    np.testing.assert_allclose(y, np_ln(args[0], w, "n", blocks), atol=1e-5)
    for name, a, b in zip(("x", "gain", "offset"), got, expected, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-4, err_msg=name)


def test_olrn_output_bias_starts_at_its_value_and_opens_the_gate(graph):
    """b_o exists only when asked for; it starts at output_bias, so with a zero input the
    first step's gate is sigma(b_o) (the paper's cell: 1/2)."""
    x_ph, m_ph = placeholders()
    x, mask = batch()
    gates = {}
    for bias in (0.0, 2.0):
        cell = rnns.get_cell("olrn", D, scope=f"olrn_{bias}", output_bias=bias)
        rnns.rnn(cell, x_ph, m_ph)
        gates[bias] = cell.gates(tf.zeros([1, 4 * D]), tf.zeros([1, D]))["o"]
    names = [v.op.name for v in v1.global_variables()]
    assert "olrn_2.0/b_o" in names and "olrn_0.0/b_o" not in names
    with v1.Session() as sess:
        sess.run(v1.global_variables_initializer())
        o = sess.run(gates)
    np.testing.assert_allclose(o[0.0], 0.5)
    np.testing.assert_allclose(o[2.0], 1 / (1 + np.exp(-2.0)), rtol=1e-6)
