"""The deep attentional encoder-decoder of docs/DESIGN.md ("The model"), for any cell.

Read top to bottom as the architecture: embed, encode (context-aware layer 0, deeper forward
layers), decoder initial states, decode (attending layer 0, aligned layers >= 1), read out, loss.
The same functions build the teacher-forced training graph and the one-step inference graph,
so both share variable names and one checkpoint serves both.
"""

import contextlib

import numpy as np
import tensorflow as tf

import rnns
from rnns import precision
from rnns.ops import DEFAULT_INIT, layer_norm, linear
from zero.errors import UserError
from zero.vocab import BOS, PAD

v1 = tf.compat.v1


# The config key of each cell constructor option (a cell takes those in its `options`).
CELL_OPTION_KEYS = {"activation": "lrn_activation", "output_bias": "olrn_output_bias"}


class Model:
    def __init__(self, config, src_vocab_size, tgt_vocab_size, scope="model", dropout_seed=None):
        self.config = config
        # [2] int64 tensor: dropout masks are a pure function of it and the call site, so a
        # resumed run draws exactly the masks an uninterrupted run would have drawn.
        self.dropout_seed = dropout_seed
        self._dropout_sites = 0
        self.src_vocab_size = src_vocab_size
        self.tgt_vocab_size = tgt_vocab_size
        self.scope = scope
        self.d = config.hidden_size

        def cell(scope):
            try:
                takes = rnns.CELLS[config.cell].options
                options = {o: config[key] for o, key in CELL_OPTION_KEYS.items() if o in takes}
                return rnns.get_cell(
                    config.cell, self.d, layer_norm=config.cell_layer_norm, scope=scope, **options
                )
            except ValueError as e:  # a bad name in the config, not a bug: say which key
                raise UserError(f"config key 'cell': {e}") from None

        # Layer 0 of the encoder: a forward cell, and either the context-aware backward pass
        # (lower cell on the words, higher cell on the forward outputs aligned one to one) or
        # a plain backward cell whose outputs are concatenated with the forward ones.
        self.enc_fw = cell("fw")
        if config.context_aware:
            self.enc_bw = rnns.CondRNN(cell("bw_lower"), cell("bw_higher"))
        else:
            self.enc_bw = cell("bw")
        self.enc_layers = [cell("cell") for _ in range(1, config.num_encoder_layers)]
        self.dec_layers = [
            rnns.CondRNN(cell("lower"), cell("higher"), self._attention() if i == 0 else None)
            for i in range(config.num_decoder_layers)
        ]

    def _attention(self):
        try:
            return rnns.get_attention(
                self.config.attention, self.d, num_heads=self.config.num_heads
            )
        except ValueError as e:  # a bad name or head count in the config: say which key
            raise UserError(f"config key 'attention': {e}") from None

    @contextlib.contextmanager
    def var_scope(self):
        """The model's variable scope; matrix products built inside run in config.precision."""
        with v1.variable_scope(self.scope, initializer=DEFAULT_INIT, reuse=v1.AUTO_REUSE):
            with precision.compute(self.config.precision):
                yield

    # -- embed ---------------------------------------------------------------------------------

    def _embeddings(self):
        e = self.config.embed_size
        src = v1.get_variable("source_embedding", [self.src_vocab_size, e])
        tgt = v1.get_variable("target_embedding", [self.tgt_vocab_size, e])
        bias = v1.get_variable("embedding_bias", [e], initializer=tf.zeros_initializer())
        return src, tgt, bias

    def _dropout(self, x, training):
        rate = self.config.dropout
        if not training or rate <= 0:
            return x
        if self.dropout_seed is None:
            return tf.nn.dropout(x, rate=rate)
        self._dropout_sites += 1
        seed = self.dropout_seed + tf.constant([self._dropout_sites, 0], tf.int64)
        keep = tf.random.stateless_uniform(tf.shape(x), seed=seed) >= rate
        return tf.where(keep, x / (1.0 - rate), tf.zeros_like(x))

    def _residual(self, x, out, scope, training):
        """y = linear(out, d); x + dropout(y) where shapes match; then optional post-norm."""
        with v1.variable_scope(scope):
            y = self._dropout(linear(out, self.d, "linear"), training)
            if x.shape[-1] == self.d:
                y = x + y
            return layer_norm(y, "layer_norm") if self.config.layer_norm else y

    # -- encode --------------------------------------------------------------------------------

    def encode(self, src, training):
        """src [B, S] int ids (EOS included, PAD padded) -> dict used by both decoders."""
        mask = tf.cast(tf.not_equal(src, PAD), tf.float32)
        with self.var_scope():
            src_emb, _, bias = self._embeddings()
            x = self._dropout(tf.nn.embedding_lookup(src_emb, src) + bias, training)
            with v1.variable_scope("encoder/layer_0"):
                fw, _ = rnns.rnn(self.enc_fw, x, mask)
                if self.config.context_aware:
                    bw, _, final = self.enc_bw(x, mask, memory=fw, reverse=True)
                    out, final_h = bw, self.enc_bw.higher.output(final)
                else:
                    bw, final = rnns.rnn(self.enc_bw, x, mask, reverse=True)
                    out, final_h = tf.concat([fw, bw], -1), self.enc_bw.output(final)
                # Each layer's input and raw RNN outputs, for the weights mode's decomposition.
                layers = [{"input": x, "fw": fw, "bw": bw}]
                x = self._residual(x, out, "residual", training)
            for i, cell in enumerate(self.enc_layers, start=1):
                with v1.variable_scope(f"encoder/layer_{i}"):
                    out, final = rnns.rnn(cell, x, mask)
                    final_h = cell.output(final)
                    layers.append({"input": x, "fw": out})
                    x = self._residual(x, out, "residual", training)
            with v1.variable_scope("decoder"):
                init = [
                    linear(final_h, layer.higher.state_size, f"init_{i}")
                    for i, layer in enumerate(self.dec_layers)
                ]
        return {"memory": x, "mask": mask, "init": init, "layers": layers}

    # -- decode (teacher forcing) --------------------------------------------------------------

    def _target_inputs(self, tgt):
        """Decoder inputs: BOS followed by the target shifted right by one."""
        bos = tf.fill([tf.shape(tgt)[0], 1], BOS)
        return tf.concat([bos, tgt[:, :-1]], axis=1)

    def decode(self, enc, tgt, training):
        """Teacher-forced decoder over tgt [B, T] -> logits [B, T, V]."""
        with self.var_scope():
            h, context, tgt_emb = self._decoder_outputs(enc, tgt, training)
            return self._logits(h, context, tgt_emb, training)

    def _decoder_outputs(self, enc, tgt, training):
        """Teacher-forced decoder layers (inside the model's variable scope) -> (top layer's
        outputs [B, T, d], attention contexts [B, T, d], target embedding)."""
        mask = tf.cast(tf.not_equal(tgt, PAD), tf.float32)
        _, tgt_emb, bias = self._embeddings()
        x = tf.nn.embedding_lookup(tgt_emb, self._target_inputs(tgt)) + bias
        x = self._dropout(x, training)
        context = None
        for i, layer in enumerate(self.dec_layers):
            with v1.variable_scope(f"decoder/layer_{i}"):
                if i == 0:
                    out, context, _ = layer(
                        x,
                        mask,
                        memory=enc["memory"],
                        memory_mask=enc["mask"],
                        initial_state=enc["init"][0],
                    )
                else:
                    out, _, _ = layer(x, mask, memory=context, initial_state=enc["init"][i])
                x = self._residual(x, out, "residual", training)
        return x, context, tgt_emb

    def _logits(self, h, context, tgt_emb, training):
        """Readout tanh(linear([h; c], E)), dropout, tied softmax weights (no bias).

        h, context [..., d] -> [..., V]. Here x E^T has no transpose to redo, and its gradient
        comes out as [V, E] directly; a decoder step multiplies by E^T made once outside the
        loop instead (oneDNN runs x W^T with a few hundred rows about twice as slow as x W).
        """
        readout = tf.tanh(linear(tf.concat([h, context], -1), self.config.embed_size, "readout"))
        readout = self._dropout(readout, training)
        if readout.shape.rank == 2:
            return precision.matmul(readout, tgt_emb, transpose_b=True)
        shape = tf.shape(readout)
        flat = tf.reshape(readout, [-1, self.config.embed_size])
        logits = precision.matmul(flat, tgt_emb, transpose_b=True)
        return tf.reshape(logits, tf.concat([shape[:-1], [-1]], 0))

    # -- loss ----------------------------------------------------------------------------------

    def loss(self, src, tgt, training=True):
        """Label-smoothed cross entropy: token mean per sentence, then batch mean.

        Returns (loss, stats) where stats holds the unsmoothed summed NLL and token count.
        The readout, logits and softmax run on the target tokens only, not on padding: the
        [tokens, V] product and softmax are the costliest ops of a step.
        """
        enc = self.encode(src, training)
        is_token = tf.not_equal(tgt, PAD)
        positions = tf.where(is_token)  # [N, 2]: (sentence, time) of every target token
        with self.var_scope():
            h, context, tgt_emb = self._decoder_outputs(enc, tgt, training)
            h, context = tf.gather_nd(h, positions), tf.gather_nd(context, positions)
            logits = self._logits(h, context, tgt_emb, training)
        eps = self.config.label_smoothing if training else 0.0
        token_loss, nll = smoothed_cross_entropy(logits, tf.gather_nd(tgt, positions), eps)
        shape = tf.shape(tgt, out_type=tf.int64)
        token_loss = tf.scatter_nd(positions, token_loss, shape)  # [B, T], 0 at padding
        nll = tf.scatter_nd(positions, nll, shape)
        mask = tf.cast(is_token, tf.float32)
        lengths = tf.maximum(tf.reduce_sum(mask, 1), 1.0)
        loss = tf.reduce_mean(tf.reduce_sum(token_loss, 1) / lengths)
        stats = {
            "nll": tf.reduce_sum(nll),
            "sentence_nll": tf.reduce_sum(nll, 1),
            "tokens": tf.reduce_sum(mask),
        }
        return loss, stats

    # -- one decoder step, for beam search -----------------------------------------------------

    def inference_cache(self, enc, projected_memory=False):
        """Per-sentence tensors the step function reads (memory, mask, attention keys).

        projected_memory: also the memory times every decoder layer's higher-cell W (layer 0
        attends; the layers above read its context): a step then averages those rows instead
        of multiplying the context by each W (CondRNN.precompute's project_for)."""
        layers = self.dec_layers
        with self.var_scope():
            project_for = None
            if projected_memory:
                for i, layer in enumerate(layers[1:], start=1):  # each in its own scope
                    with v1.variable_scope(f"decoder/layer_{i}"):
                        layer.higher.build(enc["memory"].shape[-1])
                project_for = [layer.higher for layer in layers]
            with v1.variable_scope("decoder/layer_0"):
                return layers[0].precompute(enc["memory"], enc["mask"], project_for)

    def inference_constants(self, output_ids=None, pad_to=None):
        """Tensors of one decoding run that do not depend on the step, computed once outside
        the search loop: the target embedding and its bias (the step's input), and the tied
        output layer's weights transposed (of the rows `output_ids` only: a shortlist). Read
        inside the loop the embedding would be copied at every step: a variable also read by
        a gather is in copy-on-read mode. pad_to: the output layer gets columns up to a
        multiple of it, whose logits are -inf (a bias of 0 and -inf, fused into the product)."""
        with self.var_scope():
            _, tgt_emb, bias = self._embeddings()
            tgt_emb = tf.identity(tgt_emb)
            out = tgt_emb if output_ids is None else tf.gather(tgt_emb, output_ids)
            constants = {"tgt_emb": tgt_emb, "bias": bias, "out_emb_t": tf.transpose(out)}
            if pad_to:
                size = out.shape[0] if output_ids is None else tf.shape(out)[0]  # static if known
                pad = (pad_to - size % pad_to) % pad_to
                constants["out_emb_t"] = tf.pad(constants["out_emb_t"], [[0, 0], [0, pad]])
                constants["out_bias"] = tf.concat([tf.zeros([size]), tf.fill([pad], -np.inf)], 0)
            return constants

    def vocab_table(self, constants):
        """[V, proj] decoder layer 0's first input projection of every target word (its
        embedding plus the bias, through the lower cell's W and layer norm): with it a decoder
        step looks its input projection up instead of multiplying. For LRN the paper's idea
        carried into decoding: everything outside the recurrence becomes a table."""
        with self.var_scope(), v1.variable_scope("decoder/layer_0"):
            return self.dec_layers[0].lower.project(constants["tgt_emb"] + constants["bias"])

    def step_logits(self, prev_ids, states, cache, constants, table=None, beam=None):
        """prev_ids [N] -> (logits [N, V'] over the output rows of `constants`, new states).

        table: vocab_table() (a lookup replaces layer 0's first projection); beam=K: the rows
        are K hypotheses per sentence of the cache, which is then per sentence (not tiled)."""
        with self.var_scope():
            x = tf.gather(constants["tgt_emb"], prev_ids) + constants["bias"]
            new_states, context = [], None
            for i, layer in enumerate(self.dec_layers):
                with v1.variable_scope(f"decoder/layer_{i}"):
                    if i == 0:
                        x_proj = None if table is None else tf.gather(table, prev_ids)
                        out, context, state, above = layer.step(
                            x, states[i], cache=cache, x_proj=x_proj, beam=beam
                        )
                        if above is not None:  # the cache's projected memory
                            sizes = [later.higher.proj_size for later in self.dec_layers[1:]]
                            above = tf.split(above, sizes, axis=-1)
                    else:
                        memory_proj = None if above is None else above[i - 1]
                        out, _, state, _ = layer.step(
                            x, states[i], memory_t=context, memory_proj=memory_proj
                        )
                    x = self._residual(x, out, "residual", training=False)
                new_states.append(state)
            with tf.name_scope("output_layer"):
                hidden = tf.concat([x, context], -1)
                readout = tf.tanh(linear(hidden, self.config.embed_size, "readout"))
                logits = precision.matmul(readout, constants["out_emb_t"])
                if "out_bias" in constants:
                    logits = tf.nn.bias_add(logits, constants["out_bias"])
                return logits, new_states

    def step(self, prev_ids, states, cache, constants=None):
        """prev_ids [N] -> (log-probabilities [N, V], new per-layer states), with the cache
        tiled per hypothesis (one row of it per row of prev_ids)."""
        constants = constants or self.inference_constants()
        logits, new_states = self.step_logits(prev_ids, states, cache, constants)
        return tf.nn.log_softmax(logits), new_states


def smoothed_cross_entropy(logits, labels, eps):
    """Label-smoothed cross entropy of logits [N, V] against labels [N] -> (loss [N], nll [N]).

    loss = (1 - eps) * nll + eps * (-mean of the log-probabilities)
         = nll + eps * (logit of the label - mean logit)
    computed from one softmax (oneDNN's, the fastest [N, V] pass TF has on CPU) that the
    gradient reuses:  d loss / d logits = softmax - (1 - eps) * one_hot - eps / V.
    No [N, V] log-softmax is kept and no gather gradient scatters into [N, V] zeros (2.4x
    faster forward + backward than log_softmax and gather at the paper size).
    """
    labels = tf.cast(labels, tf.int32)
    rows = tf.range(tf.shape(labels)[0])

    @tf.custom_gradient
    def xent(logits):
        probs = tf.nn.softmax(logits)
        # log-sum-exp = max logit - log(its probability), the largest one: it is >= 1/V, so
        # the log never sees an underflow (the label's probability may be 0 in float32). Two
        # max reductions rather than an arg-max and two gathers (the same values, fewer ops).
        log_z = tf.reduce_max(logits, -1) - tf.math.log(tf.reduce_max(probs, -1))
        picked = tf.gather(logits, labels, batch_dims=1)
        nll = log_z - picked
        loss = nll + eps * (picked - tf.reduce_mean(logits, -1)) if eps > 0 else nll

        def grad(d_loss, d_nll):
            d_loss = tf.zeros_like(nll) if d_loss is None else d_loss
            d_nll = tf.zeros_like(nll) if d_nll is None else d_nll
            g = probs * (d_loss + d_nll)[:, None]
            if eps > 0:
                g -= (eps / tf.cast(tf.shape(logits)[-1], logits.dtype)) * d_loss[:, None]
            one_hot = (1.0 - eps) * d_loss + d_nll
            return tf.tensor_scatter_nd_sub(g, tf.stack([rows, labels], 1), one_hot)

        return (loss, nll), grad

    return xent(logits)
