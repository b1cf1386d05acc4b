"""The deep attentional encoder-decoder of DESIGN.md ("The deep NMT model"), for any cell.

Read top to bottom as the architecture: embed, encode (context-aware layer 0, deeper forward
layers), decoder initial states, decode (attending layer 0, aligned layers >= 1), read out, loss.
The same functions build the teacher-forced training graph and the one-step inference graph,
so both share variable names and one checkpoint serves both.
"""

import tensorflow as tf

import rnns
from rnns.ops import DEFAULT_INIT, layer_norm, linear
from zero.errors import UserError
from zero.vocab import BOS, PAD

v1 = tf.compat.v1


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
        options = {}
        if config.cell.lower() in ("lrn", "olrn"):
            options["activation"] = config.lrn_activation

        def cell(scope):
            try:
                return rnns.get_cell(
                    config.cell, self.d, layer_norm=config.cell_layer_norm, scope=scope, **options
                )
            except ValueError as e:  # a bad name in the config, not a bug: say which key
                raise UserError(f"config key 'cell': {e}") from None

        # Layer 0 of the encoder holds three cells: forward, backward lower (on the words) and
        # backward higher (on the forward outputs aligned one to one).
        self.enc_fw = cell("fw")
        self.enc_bw = rnns.CondRNN(cell("bw_lower"), cell("bw_higher"))
        self.enc_plain_bw = cell("bw")
        self.enc_layers = [cell("cell") for _ in range(1, config.num_encoder_layers)]
        self.dec_layers = [
            rnns.CondRNN(
                cell("lower"),
                cell("higher"),
                rnns.AdditiveAttention(self.d, num_heads=config.num_heads) if i == 0 else None,
            )
            for i in range(config.num_decoder_layers)
        ]

    def _var_scope(self):
        return v1.variable_scope(self.scope, initializer=DEFAULT_INIT, reuse=v1.AUTO_REUSE)

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
        with self._var_scope():
            src_emb, _, bias = self._embeddings()
            x = self._dropout(tf.nn.embedding_lookup(src_emb, src) + bias, training)
            with v1.variable_scope("encoder/layer_0"):
                fw, _ = rnns.rnn(self.enc_fw, x, mask)
                if self.config.context_aware:
                    out, _, final = self.enc_bw(x, mask, memory=fw, reverse=True)
                    final_h = self.enc_bw.higher.output(final)
                else:
                    out, final = rnns.rnn(self.enc_plain_bw, x, mask, reverse=True)
                    final_h = self.enc_plain_bw.output(final)
                x = self._residual(x, out, "residual", training)
            for i, cell in enumerate(self.enc_layers, start=1):
                with v1.variable_scope(f"encoder/layer_{i}"):
                    out, final = rnns.rnn(cell, x, mask)
                    final_h = cell.output(final)
                    x = self._residual(x, out, "residual", training)
            with v1.variable_scope("decoder"):
                init = [
                    linear(final_h, layer.higher.state_size, f"init_{i}")
                    for i, layer in enumerate(self.dec_layers)
                ]
        return {"memory": x, "mask": mask, "init": init}

    # -- decode (teacher forcing) --------------------------------------------------------------

    def _target_inputs(self, tgt):
        """Decoder inputs: BOS followed by the target shifted right by one."""
        bos = tf.fill([tf.shape(tgt)[0], 1], BOS)
        return tf.concat([bos, tgt[:, :-1]], axis=1)

    def decode(self, enc, tgt, training):
        """Teacher-forced decoder over tgt [B, T] -> logits [B, T, V]."""
        mask = tf.cast(tf.not_equal(tgt, PAD), tf.float32)
        with self._var_scope():
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
            return self._logits(x, context, tgt_emb, training)

    def _logits(self, h, context, tgt_emb, training):
        """Readout tanh(linear([h; c], E)), dropout, tied softmax weights (no bias)."""
        readout = tf.tanh(linear(tf.concat([h, context], -1), self.config.embed_size, "readout"))
        readout = self._dropout(readout, training)
        return tf.tensordot(readout, tgt_emb, [[readout.shape.ndims - 1], [1]])

    # -- loss ----------------------------------------------------------------------------------

    def loss(self, src, tgt, training=True):
        """Label-smoothed cross entropy: token mean per sentence, then batch mean.

        Returns (loss, stats) where stats holds the unsmoothed summed NLL and token count.
        """
        logits = self.decode(self.encode(src, training), tgt, training)
        mask = tf.cast(tf.not_equal(tgt, PAD), tf.float32)
        # One log-softmax serves both terms (the [B, T, V] pass is the costliest op of a step).
        log_probs = tf.nn.log_softmax(logits)
        nll = -tf.squeeze(tf.gather(log_probs, tgt[:, :, None], batch_dims=2), -1)
        eps = self.config.label_smoothing if training else 0.0
        if eps > 0:
            # (1 - eps) on the reference, eps spread uniformly over the vocabulary.
            uniform = -tf.reduce_mean(log_probs, axis=-1)
            token_loss = (1.0 - eps) * nll + eps * uniform
        else:
            token_loss = nll
        lengths = tf.maximum(tf.reduce_sum(mask, 1), 1.0)
        loss = tf.reduce_mean(tf.reduce_sum(token_loss * mask, 1) / lengths)
        stats = {
            "nll": tf.reduce_sum(nll * mask),
            "sentence_nll": tf.reduce_sum(nll * mask, 1),
            "tokens": tf.reduce_sum(mask),
        }
        return loss, stats

    # -- one decoder step, for beam search -----------------------------------------------------

    def inference_cache(self, enc):
        """Per-sentence tensors the step function reads (memory, mask, attention keys)."""
        with self._var_scope(), v1.variable_scope("decoder/layer_0"):
            return self.dec_layers[0].precompute(enc["memory"], enc["mask"])

    def step(self, prev_ids, states, cache):
        """prev_ids [B] -> (log-probabilities [B, V], new per-layer states)."""
        with self._var_scope():
            _, tgt_emb, bias = self._embeddings()
            x = tf.nn.embedding_lookup(tgt_emb, prev_ids) + bias
            new_states, context = [], None
            for i, layer in enumerate(self.dec_layers):
                with v1.variable_scope(f"decoder/layer_{i}"):
                    if i == 0:
                        out, context, state = layer.step(x, states[i], cache=cache)
                    else:
                        out, _, state = layer.step(x, states[i], memory_t=context)
                    x = self._residual(x, out, "residual", training=False)
                new_states.append(state)
            logits = self._logits(x, context, tgt_emb, training=False)
        return tf.nn.log_softmax(logits), new_states
