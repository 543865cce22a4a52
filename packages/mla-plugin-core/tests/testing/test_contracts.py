"""The conformance kit's contracts: a plugin built on core passes them, and a plugin broken
in the way each contract is about fails it (the kit's own test: which bug would it catch?)."""

from __future__ import annotations

import pytest
from mlagents.trainers.model_saver.torch_model_saver import TorchModelSaver
from mlagents_envs.base_env import ActionSpec
from tiny_plugin import RecordingTrainer, TinySettings, TinyTrainer

from mla_plugin_core.settings import OffPolicySettings
from mla_plugin_core.testing import contracts
from mla_plugin_core.testing.builders import vector_behavior_spec
from mla_plugin_core.testing.conformance import PluginConformance

#: What a broken contract raises: an assertion, or pytest.raises' "DID NOT RAISE".
BROKEN = (AssertionError, pytest.fail.Exception)

SPEC = vector_behavior_spec(ActionSpec.create_discrete((3,)), obs_size=4)
SMALL = {"buffer_size": 32, "batch_size": 16}


class TestTinyConformance(PluginConformance):
    """The whole kit on the tiny on-policy plugin (registered through a real entry point)."""

    trainer_type = "tiny_ppo"
    contract_hyperparameters = SMALL

    @pytest.fixture(autouse=True)
    def _registered(self, tiny_plugin_path):
        yield

    def test_every_hyperparameter_is_documented(self) -> None:
        pytest.skip("the tiny plugin is a fixture of the contracts, not a documented plugin")

    def test_booleans_take_true_or_false_only(self) -> None:
        pytest.skip("the tiny plugin is a fixture of the contracts, not a documented plugin")

    def test_shipped_configs_load(self) -> None:
        pytest.skip("the tiny plugin ships no configs")

    def test_shipped_configs_checkpoint_often(self) -> None:
        pytest.skip("the tiny plugin ships no configs")


def recipe(trainer_cls, settings=None) -> contracts.TrainerRecipe:
    settings = settings if settings is not None else TinySettings(**SMALL)
    return contracts.TrainerRecipe(trainer_cls, "tiny_ppo", settings, SPEC)


class ForgetsOnResume(TinyTrainer):
    """Re-initialises its policy after loading it."""

    def add_policy(self, parsed_behavior_id, policy):
        super().add_policy(parsed_behavior_id, policy)
        for parameter in policy.actor.parameters():
            parameter.data.normal_()


class LenientResume(TinyTrainer):
    """mlagents' own saver: a checkpoint that does not fit is logged and skipped."""

    @staticmethod
    def create_model_saver(trainer_settings, model_path, load):
        return TorchModelSaver(trainer_settings, model_path, load)


class IgnoresNaN(TinyTrainer):
    def stop_if_non_finite(self, values=None, *, state=False):
        return None


class TimeOutsAsTerminals(TinyTrainer):
    def _process_trajectory(self, trajectory):
        last = trajectory.steps[-1]._replace(interrupted=False)
        super()._process_trajectory(trajectory._replace(steps=[*trajectory.steps[:-1], last]))


class DropsTheLastStep(RecordingTrainer):
    def _process_trajectory(self, trajectory):
        super()._process_trajectory(trajectory._replace(steps=trajectory.steps[:-1]))


@pytest.mark.parametrize(
    "contract, broken",
    [
        (contracts.resumes_where_it_stopped, ForgetsOnResume),
        (contracts.refuses_another_network, LenientResume),
        (contracts.stops_at_a_non_finite_loss, IgnoresNaN),
        (contracts.bootstraps_at_time_outs_only, TimeOutsAsTerminals),
    ],
)
def test_a_broken_plugin_fails_the_contract_a_sound_one_passes(tmp_path, contract, broken):
    contract(recipe(TinyTrainer), tmp_path / "sound")
    with pytest.raises(BROKEN):
        contract(recipe(broken), tmp_path / "broken")


def test_the_off_policy_store_contract(tmp_path):
    settings = OffPolicySettings(buffer_size=64, batch_size=8, n_step=3)  # the contract sets 1
    contracts.stores_what_it_was_given(recipe(RecordingTrainer, settings), tmp_path / "sound")
    with pytest.raises(BROKEN):
        contracts.stores_what_it_was_given(recipe(DropsTheLastStep, settings), tmp_path / "broken")
