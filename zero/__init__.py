"""zero: an attentional RNN encoder-decoder toolkit for NMT in TensorFlow 1-style graph mode."""

import os

# TensorFlow's default CPU allocator passes each tensor to malloc, and glibc maps every block
# over 32 MB (its largest mmap threshold) afresh and unmaps it on free: a training step's
# [tokens, vocabulary] logits, softmax and gradient then page-fault in on every step (3.3M
# page faults in 36 sample-size steps). The BFC allocator keeps freed memory for the next step.
# (Where TensorFlow turns oneDNN on by itself, on AVX-512 CPUs, its default is oneDNN's
# `mklcpu` allocator instead; BFC is chosen there too, not measured against it.)
# Read when TensorFlow creates its CPU device, so this works as long as no session or eager op
# ran before `zero` was imported; a value the user set wins.
os.environ.setdefault("TF_CPU_ALLOCATOR_USE_BFC", "true")
