"""``mla-plugin new NAME --kind on-policy|off-policy``: write a new trainer plugin package.

The package has this repository's shape (pyproject with the ``mlagents.trainer_type``
entry point, ``src/`` layout, settings, optimizer, trainer, a YAML for the Basic
environment, README, CHANGELOG) and a test suite that passes as generated: the trainer is
registered with mlagents, and it learns Basic through the real ``mlagents-learn``.
"""
