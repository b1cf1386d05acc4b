"""The configured Session every mode runs its graph in."""

import tensorflow as tf

v1 = tf.compat.v1


def session_config(config):
    """The ConfigProto of every session: thread counts from the config (0 = TensorFlow's
    choice), soft placement, and GPU memory taken as needed rather than all at once."""
    proto = v1.ConfigProto(
        intra_op_parallelism_threads=config.threads,
        inter_op_parallelism_threads=config.threads,
        allow_soft_placement=True,
    )
    proto.gpu_options.allow_growth = True
    return proto


def make_session(config, graph):
    return v1.Session(graph=graph, config=session_config(config))
