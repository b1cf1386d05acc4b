"""zero: an attentional RNN encoder-decoder toolkit for NMT in TensorFlow 1-style graph mode."""
