"""Checkpoint bookkeeping with a relative model directory (as the quick start uses)."""

import numpy as np
import tensorflow as tf

from zero.checkpoints import CheckpointManager, find_checkpoint, listed_checkpoints

v1 = tf.compat.v1


def test_relative_directory_lists_and_finds_checkpoints(tmp_path, monkeypatch, graph):
    monkeypatch.chdir(tmp_path)
    weight = v1.get_variable("w", [3], initializer=tf.zeros_initializer())
    bump = weight.assign_add(tf.ones([3]))
    saver = v1.train.Saver()
    manager = CheckpointManager("runs/model", saver, keep=2, log=lambda _: None)
    with v1.Session(graph=graph) as sess:
        sess.run(v1.global_variables_initializer())
        (tmp_path / "runs/model").mkdir(parents=True)
        paths = []
        for step in (1, 2, 3):
            sess.run(bump)
            paths.append(manager.save(sess, step))
        manager.copy_best(paths[1])
        listed = listed_checkpoints("runs/model")
        assert [p.rsplit("-", 1)[1] for p in listed] == ["2", "3"]
        assert all(p.startswith(str(tmp_path)) for p in listed)
        best = find_checkpoint("runs/model")
        assert best.endswith("runs/model/best/model.ckpt-2")
        saver.restore(sess, best)
        np.testing.assert_array_equal(sess.run(weight), [2.0, 2.0, 2.0])
