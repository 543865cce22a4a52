"""mla-ray: one mlagents training run fed by environment workers on Ray (``mla-learn``)."""

from mla_ray.version import __version__

__all__ = ["__version__"]
