"""Layer 6, what mla-plugin-core changes in ``mlagents-learn`` when it starts: one-line
configuration and run errors, the NaN stop's exit, nothing written by a refused ``--resume``,
mlagents' end-of-run files written atomically (:mod:`.run_files`),
and the ``mlagents.trainer_type`` entry points (:func:`~.entry_point.make_entry_point`).

They apply to every run with mla-plugin-core installed, built-in trainers included. Set
``MLA_PLUGIN_HOST=off`` (or ``0``, ``false``, ``no``) to run mlagents-learn without them:
plugins still register and train, and their own saves stay atomic and strict, but errors are
mlagents' tracebacks again (:data:`~.entry_point.SWITCH`).
"""
