"""The base recurrent cell: variables, the input projection (outside the loop) and layer norm.

A cell is two functions. `project` maps the inputs of all time steps at once (one big matrix
product, the cheap part on any hardware); `step` is the recurrence, run once per time step
inside the loop. Subclasses hold only their equations (docs/DESIGN.md, "Recurrent cells").
"""

import tensorflow as tf

from rnns.ops import DEFAULT_INIT, layer_norm_params, matmul, normalize

v1 = tf.compat.v1


def root_graph():
    """The outermost graph: a while-loop body is traced in a FuncGraph nested in it."""
    graph = v1.get_default_graph()
    while getattr(graph, "outer_graph", None) is not None:
        graph = graph.outer_graph
    return graph


class Cell:
    """Base class. Subclasses set the class attributes and implement `_build` and `step`.

    Class attributes:
        name: factory name (also the default variable scope).
        proj_blocks: width of the input projection `W` in units of d.
        state_blocks: state width in units of d (2 for cells whose state is [h; c]).
        options: names of extra constructor arguments (LRN: activation).
        ln_projection: whether layer_norm=True normalises the input projection (per d-wide
            block, each block its own gain/offset); GRU/LSTM normalise inside the step instead.
    """

    name = "cell"
    proj_blocks = 1
    state_blocks = 1
    ln_projection = True
    options = ()  # constructor options beyond the base class's (see rnns.get_cell)

    def __init__(self, hidden_size, layer_norm=False, scope=None, initializer=None):
        self.hidden_size = int(hidden_size)
        self.state_size = self.state_blocks * self.hidden_size
        self.proj_size = self.proj_blocks * self.hidden_size
        self.layer_norm = bool(layer_norm)
        self.scope = scope or self.name
        self.initializer = initializer or DEFAULT_INIT
        self.input_size = None
        self.variables = []  # filled by build
        self._graph = None

    def __repr__(self):
        ln = ", layer_norm=True" if self.layer_norm else ""
        return f"{type(self).__name__}({self.hidden_size}{ln}, scope={self.scope!r})"

    # -- variables -------------------------------------------------------------------------

    def build(self, input_size):
        """Create every variable of the cell (once per graph), outside any loop."""
        input_size = int(input_size)
        if self._graph is root_graph():
            if input_size != self.input_size:
                raise ValueError(
                    f"{self!r} was built for input size {self.input_size}, got {input_size}"
                )
            return
        if v1.get_default_graph() is not root_graph():
            raise RuntimeError(f"build {self!r} before entering a loop or function")
        with v1.variable_scope(self.scope, reuse=v1.AUTO_REUSE) as scope:
            self.W = self._weight("W", [input_size, self.proj_size])
            self.W_t = tf.transpose(self.W)  # for gradients inside loops (ops.matmul)
            self.ln_W = None
            if self.layer_norm and self.ln_projection:
                self.ln_W = layer_norm_params(self.proj_size, "ln_W")
            self._build()
            self.variables = v1.get_collection(v1.GraphKeys.GLOBAL_VARIABLES, scope.name + "/")
        self.input_size = input_size
        self._graph = root_graph()

    def built_in(self):
        """The graph whose variables the cell holds (None before build)."""
        return self._graph

    def _build(self):
        """Create the recurrent variables (inside the cell's variable scope)."""

    def _weight(self, name, shape):
        return v1.get_variable(name, shape, initializer=self.initializer)

    def _bias(self, name, size):
        return v1.get_variable(name, [size], initializer=v1.zeros_initializer())

    def _norm_params(self, name, size):
        """Layer norm parameters for a recurrent product, or None without layer_norm."""
        return layer_norm_params(size, name) if self.layer_norm else None

    def _recurrent(self, h, U, U_t, ln, b):
        """LN?(h U) + b, the recurrent product of a step (LN per d-wide block).

        U_t is U's transpose, made once outside the loop (ops.matmul: a faster gradient).
        Without LN the bias is added inside the product's kernel. Biases stay out of `project`
        so that no kernel fusion spans the projection and the step: the step then gives the
        same numbers inside and outside the loop.
        """
        if ln is None:
            return matmul(h, U, b, U_t)
        return normalize(matmul(h, U, w_t=U_t), *ln, blocks=U.shape[-1] // self.hidden_size) + b

    # -- the two halves of a cell ----------------------------------------------------------

    def project(self, x):
        """x [..., d_in] -> [..., proj_size]: x W (+ LN), for all time steps at once."""
        self.build(x.shape[-1])
        return self.finish_projection(matmul(x, self.W, w_t=self.W_t))

    def finish_projection(self, xw):
        """x W -> the projection `project` gives (LN per block with layer_norm). For a caller
        that has x W by other means (a weighted sum of rows already multiplied by W)."""
        if self.ln_W is None:
            return xw
        return normalize(xw, *self.ln_W, blocks=self.proj_blocks)

    def step(self, proj_t, state):
        """proj_t [B, proj_size], state [B, state_size] -> new state [B, state_size]."""
        raise NotImplementedError

    def output(self, state):
        """The cell's output h [B, d], the first d units of the state."""
        return state if self.state_blocks == 1 else state[..., : self.hidden_size]

    def zero_state(self, batch_size):
        return tf.zeros([batch_size, self.state_size])

    def num_params(self):
        """Number of scalars in the cell's variables (after build)."""
        return sum(v.shape.num_elements() for v in self.variables)
