"""mla-sweep: seeds, hyperparameter searches and benchmarks of ``mlagents-learn`` on Ray Tune.

A sweep file is an ML-Agents trainer YAML plus a ``sweep:`` block (:mod:`mla_sweep.config`);
``mla-sweep run`` runs each trial as a real ``mlagents-learn`` (:mod:`mla_sweep.trial`) under
Ray Tune (:mod:`mla_sweep.runner`), ``mla-sweep report`` summarises the trials' own results
folders (:mod:`mla_sweep.report`).
"""

from mla_sweep.version import __version__

__all__ = ["__version__"]
