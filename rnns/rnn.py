"""Runners: `rnn` drives one cell over a padded batch, `CondRNN` a conditional (two-cell) RNN.

Both compute every input projection they can before the loop, so that the loop holds only what
truly depends on the previous state. At a padded position (mask 0) the state is carried
unchanged, so a padded batch gives exactly the results of the unpadded sequences.
"""

import tensorflow as tf

from rnns.attention import mask_bias
from rnns.cell import root_graph

v1 = tf.compat.v1

# Steps of an RNN depend on each other, but the loop's bookkeeping (reading inputs, writing
# outputs) and, in the backward pass, the weight-gradient products of different steps do not.
# (On a GPU this also lets the executor launch those kernels ahead of the recurrence.)
PARALLEL_ITERATIONS = 32


def _time_major(x):
    return tf.transpose(x, [1, 0] + list(range(2, x.shape.rank)))


def _carry(mask_t, new, prev):
    """m*new + (1-m)*prev for m in {0, 1} (any m > 0 counts as a token): the new state at
    tokens, the old one at padding.

    Written as a select so that m = 1 gives exactly `new` (beam search compares steps with
    whole-sequence runs) and the backward pass needs no products.
    """
    return tf.where(mask_t, new, prev)


def _loop(step, sequences, mask, state, reverse, num_extras=0):
    """Runs `step(inputs_t, state) -> (new_state, extras)` over time.

    sequences: time-major tensors [T, B, ...]; mask: [B, T] float (1 token, 0 pad).
    Returns (states [T, B, state_size], [extras [T, B, ...]], final_state); the states are the
    carried ones (masked), the extras as the step returned them.
    """
    mask_tm = tf.expand_dims(tf.transpose(mask) > 0, -1)  # [T, B, 1] bool
    length = tf.shape(mask_tm)[0]
    static_length = mask.shape[1] if mask.shape.rank == 2 else None

    def array(value=None):
        ta = tf.TensorArray(tf.float32 if value is None else value.dtype, size=length)
        return ta if value is None else ta.unstack(value)

    inputs = [array(s) for s in sequences]
    masks = array(mask_tm)
    outputs = [array() for _ in range(1 + num_extras)]

    def body(t, state, outputs):
        pos = length - 1 - t if reverse else t
        new_state, extras = step([ta.read(pos) for ta in inputs], state)
        state = _carry(masks.read(pos), new_state, state)
        values = [state] + list(extras)
        outputs = [ta.write(pos, v) for ta, v in zip(outputs, values, strict=True)]
        return t + 1, state, outputs

    _, final_state, outputs = v1.while_loop(
        lambda t, *_: t < length,
        body,
        (tf.constant(0), state, outputs),
        parallel_iterations=PARALLEL_ITERATIONS,
        swap_memory=False,  # ignored by TensorFlow 2's while_v2: stays on the device
        maximum_iterations=static_length,
    )
    stacked = [ta.stack() for ta in outputs]
    return stacked[0], stacked[1:], final_state


def _batch_major(states_tm, cell):
    """[T, B, state_size] carried states -> outputs h [B, T, d]."""
    return _time_major(cell.output(states_tm))


def rnn(cell, inputs, mask, initial_state=None, reverse=False):
    """Runs `cell` over inputs [B, T, d_in] with mask [B, T] (1 token, 0 pad; T >= 1).

    Returns (outputs [B, T, d], final_state [B, state_size]). reverse=True runs right to left
    (outputs stay in input order); on right-padded batches the padding comes first and leaves
    the initial state untouched.
    """
    inputs, mask = tf.convert_to_tensor(inputs), tf.cast(mask, tf.float32)
    # Transposing the narrower inputs, not the projection, is the cheaper way to time-major.
    proj = cell.project(_time_major(inputs))
    if initial_state is None:
        initial_state = cell.zero_state(tf.shape(inputs)[0])

    def step(inputs_t, state):
        return cell.step(inputs_t[0], state), []

    states, _, final_state = _loop(step, [proj], mask, initial_state, reverse)
    return _batch_major(states, cell), final_state


class CondRNN:
    """Conditional RNN (the dl4mt cGRU pattern, with any cell).

    Per step:  s = lower.step(lower.project(x_t), state)
               c_t = attention(query=lower.output(s), memory)   if `attention` is given,
               c_t = memory[:, t]                               otherwise (aligned memory)
               state = higher.step(higher.project(c_t), s)
    The state carried between steps is the higher cell's, so both cells need the same
    state_size. In aligned mode the higher projection is computed for all steps before the loop.
    """

    def __init__(self, lower, higher, attention=None):
        if lower.state_size != higher.state_size:
            raise ValueError(f"state sizes differ: {lower!r} vs {higher!r}")
        self.lower = lower
        self.higher = higher
        self.attention = attention

    @property
    def hidden_size(self):
        return self.higher.hidden_size

    @property
    def state_size(self):
        return self.higher.state_size

    def zero_state(self, batch_size):
        return self.higher.zero_state(batch_size)

    def build(self, input_size, memory_size):
        """Creates every variable (both cells, attention) outside any loop.

        input_size None skips the lower cell (for `precompute`, which does not know it).
        """
        if input_size is not None:
            self.lower.build(input_size)
        self.higher.build(memory_size)
        if self.attention is not None:
            self.attention.build(memory_size, query_size=self.lower.hidden_size)

    def precompute(self, memory, memory_mask=None, project_for=None):
        """Cache for stepping: memory [B, S, d_mem], its mask [B, S] as the scores' additive
        bias (attention.mask_bias) and the attention keys.

        project_for: the cells that read this layer's context (its higher cell, then the
        higher cells of aligned layers above): the cache then also holds `values`, the memory
        times their W side by side, and a step gets each cell's context W as the attention's
        average of those rows (Attention.projected_context) instead of a [N, d_mem] x
        [d_mem, proj] product per step (the same numbers up to float rounding).
        """
        memory = tf.convert_to_tensor(memory)
        if memory_mask is None:
            memory_mask = tf.ones(tf.shape(memory)[:2])
        cache = {"memory": memory, "mask_bias": mask_bias(memory_mask)}
        if project_for and self.attention is None:
            raise ValueError("project_for needs an attending layer (its weights average rows)")
        if self.attention is not None:
            self.build(None, memory.shape[-1])
            cache["keys"] = self.attention.precompute_keys(memory)
            if project_for:
                if project_for[0] is not self.higher:
                    raise ValueError("project_for starts with this layer's higher cell")
                if any(cell.built_in() is not root_graph() for cell in project_for):
                    raise ValueError("project_for: build the cells above first (their scopes)")
                with tf.name_scope("precompute"):  # per batch (bench decode's parts)
                    w = [cell.W for cell in project_for]
                    w = w[0] if len(w) == 1 else tf.concat(w, 1)
                    cache["values"] = self.attention.project_values(memory, w)
        return cache

    def _attend_and_update(self, s, cache, memory_t=None, beam=None, memory_proj=None):
        """The part of a step after the lower cell: the context, then the higher cell.
        beam=K: s holds K hypotheses per sentence of the (untiled) cache, consecutively.
        Returns (context, new state, context x W of the cells above, or None)."""
        xw = above = None
        if self.attention is None:
            context, xw = memory_t, memory_proj
        else:
            query = self.lower.output(s)
            if beam:
                query = tf.reshape(query, [-1, beam, query.shape[-1]])  # [B, K, d]
            context, weights = self.attention(
                query, cache["keys"], cache["memory"], bias=cache["mask_bias"]
            )
            if "values" in cache:
                xw = self.attention.projected_context(weights, cache["values"])
            if beam:  # [B, K, .] -> [B * K, .]
                context = tf.reshape(context, [-1, context.shape[-1]])
                xw = None if xw is None else tf.reshape(xw, [-1, xw.shape[-1]])
            own = self.higher.proj_size
            if xw is not None and xw.shape[-1] > own:
                xw, above = tf.split(xw, [own, xw.shape[-1] - own], axis=-1)
        proj = self.higher.project(context) if xw is None else self.higher.finish_projection(xw)
        return context, self.higher.step(proj, s), above

    def __call__(self, inputs, mask, memory, memory_mask=None, initial_state=None, reverse=False):
        """inputs [B, T, d_in], mask [B, T]; memory [B, S, d_mem] with memory_mask [B, S]
        (attention), or [B, T, d_mem] aligned with the inputs (no attention).

        Returns (outputs [B, T, d], contexts [B, T, d_mem], final_state [B, state_size]).
        """
        inputs, memory = tf.convert_to_tensor(inputs), tf.convert_to_tensor(memory)
        mask = tf.cast(mask, tf.float32)
        self.build(inputs.shape[-1], memory.shape[-1])
        lower_proj = self.lower.project(_time_major(inputs))
        if initial_state is None:
            initial_state = self.zero_state(tf.shape(inputs)[0])

        if self.attention is None:
            higher_proj = self.higher.project(_time_major(memory))

            def step(xs, state):
                return self.higher.step(xs[1], self.lower.step(xs[0], state)), []

            states, _, final_state = _loop(
                step, [lower_proj, higher_proj], mask, initial_state, reverse
            )
            contexts = memory
        else:
            cache = self.precompute(memory, memory_mask)

            def step(xs, state):
                context, new_state, _ = self._attend_and_update(
                    self.lower.step(xs[0], state), cache
                )
                return new_state, [context]

            states, (contexts,), final_state = _loop(
                step, [lower_proj], mask, initial_state, reverse, num_extras=1
            )
            contexts = _time_major(contexts)
        return _batch_major(states, self.higher), contexts, final_state

    def step(self, x_t, state, cache=None, memory_t=None, x_proj=None, beam=None, memory_proj=None):
        """One step from the raw input x_t [B, d_in] and the carried state [B, state_size].

        Attention mode needs `cache` (from `precompute`), aligned mode `memory_t` [B, d_mem].
        x_proj: the lower cell's projection of x_t when the caller has it already (a lookup
        table); memory_proj: memory_t times the higher cell's W, before any layer norm, when
        the caller has it (the `above` of the attending layer's step); beam=K: the rows are K
        hypotheses per sentence of the cache, which is then not tiled (the attention reads each
        sentence's memory once for its K queries).
        Returns (output [B, d], context [B, d_mem], new_state, above), the numbers __call__
        gives at that position; `above` is the context times the W of the cells above that
        precompute's project_for named, side by side ([B, their proj sizes]), else None.
        No masking: the caller decides what happens to finished sequences.
        """
        if self.attention is not None:
            if cache is None:
                raise ValueError("CondRNN.step with attention needs cache=precompute(...)")
            memory_size = cache["memory"].shape[-1]
        elif memory_t is None:
            raise ValueError("CondRNN.step without attention needs memory_t")
        else:
            memory_size = memory_t.shape[-1]
        self.build(x_t.shape[-1], memory_size)
        proj = self.lower.project(x_t) if x_proj is None else x_proj
        s = self.lower.step(proj, state)
        context, new_state, above = self._attend_and_update(
            s, cache, memory_t=memory_t, beam=beam, memory_proj=memory_proj
        )
        return self.higher.output(new_state), context, new_state, above
