"""Layer 5, the base trainers a plugin subclasses.

- :mod:`.base`: :class:`PluginTrainerMixin`, what every plugin trainer shares (atomic saves,
  the NaN stop, the strict ``--resume``);
- :mod:`.on_policy`: :class:`OnPolicyPluginTrainer` (GAE, bootstrapping at time-outs);
- :mod:`.off_policy`: :class:`OffPolicyPluginTrainer` (replay, n-step, saved stores);
- :mod:`.optimizer`: :class:`PluginOptimizer`, one gradient step and its schedules;
- :mod:`.schedules`: values that change over training (learning rate, epsilon, beta).

Imports the layers below it, never :mod:`mla_plugin_core.host`.
"""
