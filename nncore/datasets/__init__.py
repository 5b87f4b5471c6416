"""Bundled data sets and loaders for data a user has.

- :func:`load_digits16`: the course's handwritten digits, 16 x 16 binary
  pixels (256 inputs, 10 classes), shipped inside the package.
- :func:`load_mnist`: MNIST from files you have (IDX, gzipped or not, or npz).
- :func:`xor`, :func:`tangerines`, :func:`linear`: the course's small worked
  examples, generated from a seed.
"""
from nncore.datasets.course import linear, tangerines, xor
from nncore.datasets.digits import load_digits16, load_mnist, read_idx

__all__ = ["load_digits16", "load_mnist", "read_idx", "xor", "tangerines", "linear"]
