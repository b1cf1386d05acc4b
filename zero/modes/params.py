"""params: the configured model's parameter count per component, built without data."""

from collections import OrderedDict

import numpy as np
import tensorflow as tf

from zero.model import Model
from zero.modes.mode import Mode
from zero.vocab import load_vocabs

v1 = tf.compat.v1


def parameter_table(config):
    """[(component, count)] of the configured model, built without data."""
    _, _, src_size, tgt_size = load_vocabs(config)
    graph = tf.Graph()
    with graph.as_default():
        model = Model(config, src_size, tgt_size)
        model.loss(v1.placeholder(tf.int32, [None, None]), v1.placeholder(tf.int32, [None, None]))
        counts = OrderedDict()
        for var in v1.trainable_variables():
            parts = var.op.name.split("/")
            key = "/".join(parts[1:3]) if parts[1] in ("encoder", "decoder") else parts[1]
            if parts[1] == "decoder" and parts[2].startswith("init"):
                key = "decoder/init"
            counts[key] = counts.get(key, 0) + int(np.prod(var.shape.as_list()))
    return list(counts.items())


def run(config):
    rows = parameter_table(config)
    width = max(len(k) for k, _ in rows)
    print(f"{'component':<{width}}  {'parameters':>12}")
    for key, count in rows:
        print(f"{key:<{width}}  {count:>12,}")
    print(f"total parameters: {sum(c for _, c in rows)}")


MODE = Mode("params", "parameter count per component, ending with `total parameters: N`", run)
