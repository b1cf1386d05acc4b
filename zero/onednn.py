"""TensorFlow's oneDNN CPU kernels, switched by the `cpu_kernels` config key.

TensorFlow reads its switch (the TF_ENABLE_ONEDNN_OPTS variable) once, when it loads, so run.py
applies the key before importing it. oneDNN speeds up the large products of training and of
decoding many sentences at once; a decoder step over a few sentences (the server's batches)
runs faster on TensorFlow's own kernels (bench serve: 1.17x), so `auto` takes those there.
"""

import os
import sys

from zero.config import SCHEMA

VARIABLE = "TF_ENABLE_ONEDNN_OPTS"
FEW_SENTENCE_MODES = ("serve",)


def switch(setting, mode):
    """The switch's value `setting` asks for in `mode`: "1", "0", or None where TensorFlow keeps
    its own choice or the user's (auto outside FEW_SENTENCE_MODES, or the variable set)."""
    if setting == "auto":
        if mode not in FEW_SENTENCE_MODES or VARIABLE in os.environ:
            return None
        setting = "tensorflow"
    return "1" if setting == "onednn" else "0"


def select(setting, mode):
    """Set the switch for `mode` before TensorFlow loads -> what switch() gives (None: left
    as it is)."""
    if "tensorflow" in sys.modules or setting not in SCHEMA["cpu_kernels"].choices():
        return None  # loaded already (a test calling run.main), or a value load rejects
    value = switch(setting, mode)
    if value is not None:
        os.environ[VARIABLE] = value
    return value


def chosen():
    """The kernels this process asked TensorFlow for: "onednn", "tensorflow", or "default"
    (TensorFlow's choice: oneDNN on Linux x86 CPUs with AVX-512 VNNI or bfloat16, or AMX)."""
    return {"1": "onednn", "0": "tensorflow"}.get(os.environ.get(VARIABLE), "default")
