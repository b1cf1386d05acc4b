"""bench step's fixed-steps search: every sentence runs the steps asked for, where the real
search of the same model ends sentences at different steps (what makes the bench's per-step
times comparable across batch sizes)."""

import numpy as np
import tensorflow as tf
from helpers import make_session, pad, random_sentences, randomize, tiny_config

from bench.step import fixed_steps_translator
from zero.decode import Translator
from zero.model import Model

v1 = tf.compat.v1


def test_fixed_steps_search_runs_every_sentence_the_steps_asked_for():
    base = tiny_config(beam_size=4, max_decode_factor=0.0, max_decode_extra=30)
    with tf.Graph().as_default():
        model = Model(base, 20, 20)
        steps = v1.placeholder_with_default(5, [])
        fixed = fixed_steps_translator(steps)([model], base)
        real = Translator([model], tiny_config(beam_size=4, max_decode_extra=6))
        init = v1.global_variables_initializer()
        with make_session() as sess:
            sess.run(init)
            randomize(sess, scale=1.0, seed=3)
            src = pad(random_sentences(np.random.default_rng(0), 9, 20, max_len=6))
            real_steps = real.run_with_details(sess, src)[2]["steps"]
            fixed.prepare(sess)
            ran = {
                n: sess.run([fixed.ids, fixed.details["steps"]], {fixed.src: src, steps: n})
                for n in (3, 20)
            }
    assert len(set(real_steps.tolist())) > 1 and real_steps.max() < 20
    for n, (ids, taken) in ran.items():
        assert taken.tolist() == [n] * len(src)
        assert ids.shape[:2] == (len(src), 4)
