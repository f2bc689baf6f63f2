"""rnnlab: recurrent neural networks on PyTorch, every variant of the literature, and a workbench to compare them."""

__version__ = "0.1.0"
