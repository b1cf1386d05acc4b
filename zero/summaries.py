"""TensorBoard scalars written from Python values (no summary ops in the graph)."""

import tensorflow as tf

v1 = tf.compat.v1


class SummaryWriter:
    def __init__(self, directory):
        self.writer = v1.summary.FileWriter(directory)

    def scalars(self, step, values):
        summary = v1.Summary(
            value=[v1.Summary.Value(tag=k, simple_value=float(v)) for k, v in values.items()]
        )
        self.writer.add_summary(summary, step)
        self.writer.flush()

    def close(self):
        self.writer.close()
