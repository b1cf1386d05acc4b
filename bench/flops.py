"""Analytic FLOP counts from the matrix products only (2 FLOPs per multiply-add; embedding
lookups and element-wise work are free), shared by `bench cells`, `model`, `precision` and
`profile`. The backward pass computes two products of the same size per forward product (the
gradient of the input and of the weight), so forward + backward = 3 x forward."""

# (input projection width, recurrent projection width) of each cell in units of the hidden
# size d: per token, a cell multiplies its input by a [d_in, n_in * d] matrix outside the loop
# and its previous state by a [d, n_rec * d] one inside it.
WIDTHS = {
    "lrn": (3, 0),
    "olrn": (4, 0),
    "sru": (4, 0),
    "atr": (1, 1),
    "gru": (3, 3),
    "lstm": (4, 4),
    # Keras's layers do the same products as ours.
    "keras_gru": (3, 3),
    "keras_lstm": (4, 4),
}


def widths(cell):
    """(n_in, n_rec) of `cell`; a cell registered after this table was written has none."""
    key = cell.lower()
    if key not in WIDTHS:
        raise SystemExit(
            f"bench/flops.py: no projection widths for cell {cell!r}; add it to WIDTHS"
        )
    return WIDTHS[key]


def cell_train_flops(cell, size, batch, steps):
    """Forward + backward FLOPs of one cell (input = hidden = size) over [batch, steps]."""
    n_in, n_rec = widths(cell)
    forward = 2 * size * size * (n_in + n_rec) * batch * steps
    return 3 * forward


def model_flops(config, batch, src_len, tgt_len, tgt_vocab, tgt_tokens=None):
    """Forward FLOPs of the model on a [batch, src_len] -> [batch, tgt_len] batch.

    The recurrent layers run over the padded batch; the readout and logits only over the
    `tgt_tokens` real target tokens (Model.loss skips padding there), all when not given.
    Per source token: the encoder's input projections and recurrent products (layer 0: the
    forward cell, and the context-aware backward pass's lower cell on the words and higher cell
    on the forward outputs), the residual linear maps, the attention keys. Per target token:
    each decoder layer's two cells (input projection + recurrent product each; layer 0's
    higher cell projects the attention context inside the loop), the attention query, scores
    (v . tanh(...), over src_len) and context (over src_len), the residual maps, the readout
    [h; c] -> E and the tied logits E -> V. Per sentence: the decoder initial states.
    """
    d, e = config.hidden_size, config.embed_size
    n_in, n_rec = widths(config.cell)
    state = d * (2 if config.cell.lower() in ("lstm", "sru") else 1)

    def cell(d_in):  # one cell, per token
        return 2 * (d_in * n_in * d + d * n_rec * d)

    residual = 2 * d * d
    src = cell(e) + (cell(e) + cell(d) if config.context_aware else cell(e)) + residual
    src += (config.num_encoder_layers - 1) * (cell(d) + residual)
    src += 2 * d * d  # attention keys W_k m
    tgt = 0
    for i in range(config.num_decoder_layers):
        tgt += cell(e if i == 0 else d) + cell(d) + residual
    tgt += 2 * d * d + 2 * src_len * d + 2 * src_len * d  # query, scores, context
    output = 2 * (2 * d) * e + 2 * e * tgt_vocab  # readout, logits
    per_sentence = config.num_decoder_layers * 2 * d * state
    if tgt_tokens is None:
        tgt_tokens = batch * tgt_len
    return batch * (src_len * src + tgt_len * tgt + per_sentence) + tgt_tokens * output


def train_step_flops(config, batch, src_len, tgt_len, tgt_vocab, tgt_tokens=None):
    """Forward + backward of one training step."""
    return 3 * model_flops(config, batch, src_len, tgt_len, tgt_vocab, tgt_tokens)


def encoder_flops(config, src_len, projected=False):
    """Forward FLOPs of encoding one sentence of src_len tokens (padding included), with the
    decoder's initial states and the attention keys (and with `projected`, the memory times
    every decoder layer's higher-cell W: decode_projected_memory)."""
    d, e = config.hidden_size, config.embed_size
    n_in, n_rec = widths(config.cell)
    state = d * (2 if config.cell.lower() in ("lstm", "sru") else 1)

    def cell(d_in):
        return 2 * (d_in * n_in * d + d * n_rec * d)

    first_out = d if config.context_aware else 2 * d  # the residual map's input
    per_token = cell(e) + (cell(e) + cell(d) if config.context_aware else cell(e))
    per_token += 2 * first_out * d + (config.num_encoder_layers - 1) * (cell(d) + 2 * d * d)
    per_token += 2 * d * d  # attention keys W_k m
    if projected:
        per_token += config.num_decoder_layers * 2 * d * n_in * d
    return src_len * per_token + config.num_decoder_layers * 2 * d * state


def decode_step_flops(config, src_len, output_size, table=False, projected=False):
    """Forward FLOPs of one decoder step of one hypothesis: each layer's two cells (layer 0's
    first input projection is a lookup with the vocabulary table; with `projected` each
    higher cell's input product is, per head, an average of src_len projected memory rows), the
    attention's query, scores and context over src_len, the residual maps, the readout and
    the output layer over output_size words (the vocabulary, or a shortlist)."""
    d, e = config.hidden_size, config.embed_size
    n_in, n_rec = widths(config.cell)
    total = 0
    for i in range(config.num_decoder_layers):
        lower_in = 0 if (i == 0 and table) else (e if i == 0 else d) * n_in * d
        higher_in = (config.num_heads * src_len if projected else d) * n_in * d
        total += 2 * (lower_in + 2 * d * n_rec * d + higher_in + d * d)
    total += 2 * (d * d + 2 * src_len * d)  # query, scores (v . tanh or q . k), context
    return total + 2 * (2 * d * e + e * output_size)
