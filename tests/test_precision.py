"""rnns/precision.py, zero/loss_scale.py: bfloat16 and float16 matrix products against float32
for every cell (loss, gradients, beam search), checkpoints across precisions, and float16's
dynamic loss scaling."""

import os

import numpy as np
import pytest
import tensorflow as tf
from helpers import (
    CELLS,
    make_session,
    pad,
    random_sentences,
    randomize,
    tiny_config,
    trained_tiny_model,
    write_corpus,
)

from rnns import precision
from zero import config as config_lib
from zero import loss_scale
from zero.checkpoints import find_checkpoint
from zero.decode import Translator
from zero.model import Model
from zero.modes import MODES
from zero.train import Trainer
from zero.train_graph import TrainGraph

v1 = tf.compat.v1
VOCAB = 20

# Tolerances, relative to float32. bfloat16 keeps 8 significant bits: one rounding is off by up
# to 2^-9 = 0.2%, and the many roundings of a forward pass partly cancel (measured on these
# models: 0.003-0.03% on the loss, 0.3-0.7% on the whole gradient). float16 keeps 11 bits
# (measured: under 0.007% and 0.07%). The bounds leave a margin of 7x and more, while a cast in
# the wrong place (a product output rounded into the recurrent state, a bfloat16 softmax) or
# a wrong gradient gives errors of order 1.
LOSS_TOL = {"bfloat16": 1e-2, "float16": 1e-3}
GRAD_TOL = {"bfloat16": 5e-2, "float16": 1e-2}
# Share of the beam search outputs identical to float32's: "mostly". Measured: random
# N(0, 0.5^2) weights, outputs cut at source length + 2 (longer ones of a random model only
# multiply the near ties): 75-100% per cell; the briefly trained model: 8 of 8.
SAME_OUTPUTS = 0.6


def _batch(seed=0, n=6):
    rng = np.random.default_rng(seed)
    return (
        pad(random_sentences(rng, n, VOCAB, max_len=7)),
        pad(random_sentences(rng, n, VOCAB, max_len=7)),
    )


def _run(cell, name):
    """Loss, gradients (float32 arrays) and beam search ids of a tiny model whose weights are
    the same random draw in every precision: N(0, 0.3^2) for the loss (N(0, 1) saturates the
    gates, where rounding errors grow), N(0, 0.5^2) for beam search (more peaked
    distributions: fewer near ties)."""
    src, tgt = _batch()
    config = tiny_config(
        cell=cell,
        precision=name,
        hidden_size=16,
        embed_size=16,
        num_encoder_layers=1,  # layer 0 (context-aware) only; the decoder's 2 layers cover both
        beam_size=3,
        max_decode_extra=2,
    )
    graph = tf.Graph()
    with graph.as_default():
        model = Model(config, VOCAB, VOCAB)
        loss, _ = model.loss(tf.constant(src), tf.constant(tgt), training=False)
        params = v1.trainable_variables()
        grads = [tf.convert_to_tensor(g) for g in tf.gradients(loss, params)]
        translator = Translator([model], config)
        sess = make_session(graph)
        sess.run(v1.global_variables_initializer())
        randomize(sess, scale=0.3, seed=1, variables=params)
        loss_value, grad_values = sess.run([loss, grads])
        randomize(sess, scale=0.5, seed=1, variables=params)
        ids, _ = translator.run(sess, _batch(seed=1, n=12)[0])
        # (dtype, whether a matrix-vector product) of the products outside the loops
        products = {
            (op.get_attr("T").name, op.outputs[0].shape[-1] == 1)
            for op in graph.get_operations()
            if op.type in ("MatMul", "BatchMatMulV2")
        }
    sess.close()
    return {"loss": loss_value, "grads": grad_values, "ids": ids[:, 0], "products": products}


@pytest.fixture(scope="module")
def runs():
    """runs(cell, precision) -> _run's results, each computed once."""
    done = {}

    def get(cell, name):
        if (cell, name) not in done:
            done[cell, name] = _run(cell, name)
        return done[cell, name]

    return get


def _flat(grads):
    return np.concatenate([g.ravel() for g in grads])


@pytest.mark.parametrize("name", ["bfloat16", "float16"])
@pytest.mark.parametrize("cell", CELLS)
def test_loss_close_to_float32(runs, cell, name):
    ref, low = runs(cell, "float32"), runs(cell, name)
    assert {dtype for dtype, _ in ref["products"]} == {"float32"}
    # Every product is in the low precision but the attention score v . tanh(...) (the one
    # matrix-vector product, float32 on purpose: rnns/attention.py).
    assert {dtype for dtype, vector in low["products"] if not vector} == {name}
    assert {dtype for dtype, vector in low["products"] if vector} == {"float32"}
    diff = abs(low["loss"] - ref["loss"]) / ref["loss"]
    assert 0 < diff < LOSS_TOL[name]  # not 0: the loops' products are low precision too


@pytest.mark.parametrize("name", ["bfloat16", "float16"])
@pytest.mark.parametrize("cell", CELLS)
def test_gradients_finite_and_close(runs, cell, name):
    ref, low = _flat(runs(cell, "float32")["grads"]), _flat(runs(cell, name)["grads"])
    assert low.dtype == np.float32 and np.isfinite(low).all()
    assert np.linalg.norm(low - ref) / np.linalg.norm(ref) < GRAD_TOL[name]


@pytest.mark.parametrize("cell", CELLS)
def test_beam_search_mostly_identical(runs, cell):
    ref, low = runs(cell, "float32")["ids"], runs(cell, "bfloat16")["ids"]
    same = [np.array_equal(a, b) for a, b in zip(ref, low, strict=True)]
    assert np.mean(same) >= SAME_OUTPUTS


def test_float32_graph_has_no_low_precision_tensor(graph):
    """float32 builds the graph it built before precision existed: nothing is cast down."""
    model = Model(tiny_config(cell="gru"), VOCAB, VOCAB)
    src, tgt = _batch()
    loss, _ = model.loss(tf.constant(src), tf.constant(tgt))
    tf.gradients(loss, v1.trainable_variables())
    dtypes = {t.dtype for op in graph.get_operations() for t in op.outputs}
    assert tf.float32 in dtypes and not dtypes & {tf.bfloat16, tf.float16}


def test_cast_once_hoists_out_of_loops(graph):
    w = v1.get_variable("w", [3, 3])
    seen = []

    def body(i, x):
        copy = precision.cast_once(w, tf.bfloat16)
        seen.append(copy)
        return i + 1, x + tf.cast(tf.reduce_sum(copy), tf.float32)

    v1.while_loop(lambda i, x: i < 3, body, (tf.constant(0), tf.constant(0.0)))
    copy = precision.cast_once(w, tf.bfloat16)
    assert seen[0] is not None and seen[0].graph is graph and copy is seen[0]
    assert copy.dtype == tf.bfloat16
    with pytest.raises(ValueError, match="unknown precision"):
        with precision.compute("float8"):
            pass


# -- checkpoints across precisions, through the modes --------------------------------------


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny LRN trained briefly in float32, and its config."""
    return trained_tiny_model(
        tmp_path_factory.mktemp("precision"), max_steps=100, eval_every=100, beam_size=3
    )


def _mode(run, config, tmp_path, tag, **sets):
    out = tmp_path / f"{tag}.txt"
    values = [f"{k}={v}" for k, v in sets.items()] + [f"output={out}"]
    run(config_lib.load(os.path.join(config.output_dir, "config.yaml"), values))
    return out.read_text(encoding="utf-8").splitlines()


def test_float32_checkpoint_decodes_and_scores_in_bfloat16(trained, tmp_path):
    src, tgt = trained.dev_src, trained.dev_tgt
    outputs = {
        p: _mode(MODES["test"], trained, tmp_path, p, input=src, precision=p)
        for p in ("float32", "bfloat16")
    }
    assert len(outputs["bfloat16"]) == len(outputs["float32"]) > 0
    same = np.mean([a == b for a, b in zip(*outputs.values(), strict=True)])
    assert same >= SAME_OUTPUTS
    scores = {}
    for p in ("float32", "bfloat16"):
        lines = _mode(
            MODES["score"], trained, tmp_path, f"s{p}", input=src, reference=tgt, precision=p
        )
        scores[p] = np.array(lines, float)
    # The corpus's log-probability to LOSS_TOL, as a batch loss; a single sentence's to 5x
    # that: its few rounded logits do not average out (measured: 2.9% on one of 8 sentences).
    total = {p: s.sum() for p, s in scores.items()}
    np.testing.assert_allclose(total["bfloat16"], total["float32"], rtol=LOSS_TOL["bfloat16"])
    np.testing.assert_allclose(scores["bfloat16"], scores["float32"], rtol=5 * LOSS_TOL["bfloat16"])


def test_bfloat16_training_keeps_float32_checkpoints(trained, tmp_path):
    """Trained in bfloat16: every variable saved is float32, and float32 decodes it."""
    config = config_lib.load(
        os.path.join(trained.output_dir, "config.yaml"),
        [f"output_dir={tmp_path / 'bf16'}", "max_steps=5", "eval_every=5", "precision=bfloat16"],
    )
    Trainer(config, log=lambda m: None).train()
    reader = tf.train.load_checkpoint(find_checkpoint(config.output_dir))
    dtypes = {
        name: dtype
        for name, dtype in reader.get_variable_to_dtype_map().items()
        if dtype.is_floating
    }
    assert dtypes and set(dtypes.values()) == {tf.float32}
    out = _mode(MODES["test"], config, tmp_path, "out", input=config.dev_src, precision="float32")
    assert len(out) == 8


# -- float16 loss scaling -----------------------------------------------------------------------


def _float16_graph():
    config = tiny_config(precision="float16", dev_src=None)
    g = TrainGraph(config, VOCAB, VOCAB)
    g.finalize(config)
    return g


def test_loss_scaling_skips_an_overflowing_step(graph):
    g = _float16_graph()
    src, tgt = _batch()
    feed = {g.src: src, g.tgt: tgt}
    sess = make_session(graph)
    sess.run(g.init_op)
    scale = g.loss_scale.scale
    state = v1.global_variables()
    assert sess.run(scale) == loss_scale.INITIAL_SCALE

    sess.run(g.train_op, feed)  # a normal step: applied, the scale kept
    assert sess.run([scale, g.loss_scale.good_steps, g.global_step]) == [2.0**15, 1, 1]

    sess.run(scale.assign(1e30))  # the scaled gradients overflow float16
    before = sess.run(state)
    _, loss, grad_norm = sess.run([g.train_op, g.loss, g.grad_norm], feed)
    after = dict(zip([v.op.name for v in state], sess.run(state), strict=True))
    assert np.isfinite(loss) and not np.isfinite(grad_norm)
    for var, value in zip(state, before, strict=True):  # weights, Adam moments untouched
        if var.op.name not in ("loss_scale", "loss_scale_good_steps", "global_step"):
            np.testing.assert_array_equal(after[var.op.name], value, err_msg=var.op.name)
    assert after["loss_scale"] == np.float32(5e29)  # halved
    assert after["loss_scale_good_steps"] == 0
    assert after["global_step"] == 2  # the step counts: the loop and the schedule go on

    sess.run(scale.assign(2.0**15))
    weights = sess.run(v1.trainable_variables())
    sess.run(g.train_op, feed)  # finite again: applied
    changed = [
        not np.array_equal(a, b)
        for a, b in zip(weights, sess.run(v1.trainable_variables()), strict=True)
    ]
    assert any(changed)


def test_loss_scale_grows_after_finite_steps_and_never_falls_below_one(graph):
    scaler = loss_scale.DynamicLossScale(initial=4.0, growth_interval=2)
    step = v1.train.get_or_create_global_step()
    finite = v1.placeholder(tf.bool, [])
    counter = v1.get_variable("applied", [], initializer=tf.zeros_initializer())
    # Like optimizer.apply_gradients: the update counts the step itself.
    update = scaler.apply(
        finite, lambda: tf.group(counter.assign_add(1.0), step.assign_add(1)), step
    )
    sess = make_session(graph)
    sess.run(v1.global_variables_initializer())
    seen = []
    for ok in [True, True, True, False, False, False, False]:
        sess.run(update, {finite: ok})
        seen.append(float(sess.run(scaler.scale)))
    assert seen == [4.0, 8.0, 8.0, 4.0, 2.0, 1.0, 1.0]
    assert sess.run([counter, step]) == [3.0, 7]


def test_trainer_runs_through_skipped_float16_steps(tmp_path, monkeypatch):
    """Overflowing steps do not stop training (unlike a NaN loss): they are skipped."""
    paths = write_corpus(str(tmp_path / "data"), n_train=40)
    paths["dev_ref"] = None
    config = tiny_config(
        **paths,
        output_dir=str(tmp_path / "model"),
        src_vocab_size=0,
        tgt_vocab_size=0,
        precision="float16",
        batch_tokens=60,
        max_len=10,
        max_steps=3,
        eval_every=3,
        log_every=1,
    )
    monkeypatch.setattr(
        loss_scale, "for_precision", lambda name: loss_scale.DynamicLossScale(initial=1e30)
    )
    lines = []
    assert Trainer(config, log=lines.append).train()["step"] == 3
    reader = tf.train.load_checkpoint(find_checkpoint(config.output_dir))
    assert reader.get_tensor("loss_scale") == np.float32(1.25e29)  # halved three times
