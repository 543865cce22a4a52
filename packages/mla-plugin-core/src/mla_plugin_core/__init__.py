"""mla-plugin-core: base trainers, replay, settings and a testing kit for ML-Agents plugins.

The package is laid out by layer; each imports only the ones above it in this list
(``tests/test_layers.py`` checks it):

- :mod:`.util`: atomic files, log tails, free ports, finite-number checks;
- :mod:`.replay`: transitions, replay buffers, n-step, minibatches;
- :mod:`.settings`: hyperparameter classes and their one-line refusals;
- :mod:`.networks`: the Q-network and its heads, target networks, normalisation;
- :mod:`.io`: checkpoints, the strict ``--resume``, ONNX export and the Unity model check;
- :mod:`.trainers`: the base trainers a plugin subclasses, its optimizer and schedules;
- :mod:`.host`: what changes in ``mlagents-learn`` at start-up (``MLA_PLUGIN_HOST=off``
  turns it off) and the entry points plugins register with;
- :mod:`.testing`: the pytest kit (conformance tests, ``mla_train``, builders);
- :mod:`.cli`: the ``mla-plugin`` command.

The module paths of 0.1 (``mla_plugin_core.checkpoint``, ...) still import, with a
``DeprecationWarning`` (:mod:`._moved`).
"""

from mla_plugin_core import _moved
from mla_plugin_core.version import __version__

_moved.install()

__all__ = ["__version__"]
