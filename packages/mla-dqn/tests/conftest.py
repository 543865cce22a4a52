import pytest
from mlagents.plugins.trainer_type import register_trainer_plugins


@pytest.fixture
def registered_plugins():
    """mlagents' trainer registry with every installed plugin, ``dqn`` included (what
    ``mlagents-learn`` does first); returns ``(trainer types, settings classes)``."""
    return register_trainer_plugins()
