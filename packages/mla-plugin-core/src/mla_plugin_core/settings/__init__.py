"""Layer 2, what a plugin's ``hyperparameters:`` block may hold and how a bad one is refused.

- :mod:`.hyperparameters`: base classes :class:`OnPolicySettings` and
  :class:`OffPolicySettings`, the field helpers :func:`hyperparameter` and :func:`boolean`;
- :mod:`.errors`: the one-line refusals (``<behavior>: <YAML path> = <value> is not
  allowed: ...``) and the checks of a value's type;
- :mod:`.memory`: refusing a ``buffer_size`` that cannot fit in memory.

Imports :mod:`mla_plugin_core.util` and :mod:`mla_plugin_core.replay`.
"""

from mla_plugin_core.settings.hyperparameters import *  # noqa: F403
from mla_plugin_core.settings.hyperparameters import __all__ as __all__
