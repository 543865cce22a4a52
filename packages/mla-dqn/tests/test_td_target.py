"""TD targets and losses against hand-computed examples."""

import numpy as np
import pytest
import torch
from dqn_testkit import behavior_spec, make_optimizer, replay_sample, trainer_settings
from mlagents.trainers.settings import CuriositySettings, RewardSignalType

from mla_dqn.optimizer import large_margin_loss, taken_q, td_targets

# One transition, one reward signal, two branches of 3 and 2 actions, at next_obs:
ONLINE_NEXT = [torch.tensor([[[1.0, 5.0, 3.0]]]), torch.tensor([[[2.0, 0.0]]])]
TARGET_NEXT = [torch.tensor([[[4.0, 1.0, 6.0]]]), torch.tensor([[[0.5, 3.0]]])]
# Action 2 of branch 0 is forbidden at next_obs.
NEXT_MASKS = [torch.tensor([[True, True, False]]), torch.tensor([[True, True]])]
REWARD = torch.tensor([[1.0]])
DISCOUNT = torch.tensor([[0.9**3]])  # a 3-step transition


def test_double_dqn_online_picks_target_evaluates():
    # online argmax (allowed): branch 0 -> 1 (5.0), branch 1 -> 0 (2.0);
    # target values there: 1.0 and 0.5; mean over branches 0.75.
    target = td_targets(TARGET_NEXT, NEXT_MASKS, REWARD, DISCOUNT, torch.zeros(1), ONLINE_NEXT)
    assert target.item() == pytest.approx(1.0 + 0.729 * 0.75)


def test_plain_dqn_uses_the_target_masked_max():
    # target argmax (allowed): branch 0 -> 0 (4.0; 6.0 is masked), branch 1 -> 1 (3.0).
    target = td_targets(TARGET_NEXT, NEXT_MASKS, REWARD, DISCOUNT, torch.zeros(1))
    assert target.item() == pytest.approx(1.0 + 0.729 * 3.5)


def test_terminal_cuts_the_bootstrap():
    target = td_targets(TARGET_NEXT, NEXT_MASKS, REWARD, DISCOUNT, torch.ones(1), ONLINE_NEXT)
    assert target.item() == pytest.approx(1.0)


def test_a_terminal_cuts_only_the_signals_that_use_dones():
    target_next = [torch.tensor([[[2.0, 0.0], [10.0, 20.0]]])]  # [B=1, S=2, n=2]
    masks = [torch.tensor([[True, True]])]
    rewards = torch.tensor([[1.0, 0.5]])
    discounts = torch.tensor([[0.99, 0.5]])
    # Signal 0 (extrinsic) ends at the terminal; signal 1 (curiosity) bootstraps through it.
    target = td_targets(
        target_next, masks, rewards, discounts, torch.ones(1), use_dones=torch.tensor([1.0, 0.0])
    )
    assert target.flatten().tolist() == pytest.approx([1.0, 0.5 + 0.5 * 20.0])


def test_optimizer_keeps_bootstrapping_intrinsic_signals_at_terminals():
    settings = trainer_settings()
    settings.reward_signals[RewardSignalType.CURIOSITY] = CuriositySettings()
    optimizer = make_optimizer(behavior_spec(2, (2,)), settings)
    assert optimizer.signal_names == ["extrinsic", "curiosity"]

    def constant_q(inputs):  # Q_{s,a} = 3.0 for extrinsic, 4.0 for curiosity: [B, S=2, 2]
        return [torch.tensor([[3.0, 3.0], [4.0, 4.0]]).expand(len(inputs[0]), 2, 2)]

    optimizer.q_network.signal_q_values = constant_q
    optimizer.target_network.signal_q_values = constant_q
    sample = replay_sample(
        obs=[[1.0, 0.0]],
        actions=[[0]],
        rewards={"extrinsic": [1.0], "curiosity": [0.1]},
        discounts={"extrinsic": [0.9], "curiosity": [0.5]},
        next_obs=[[0.0, 1.0]],
        dones=[True],
        n_mask=2,
    )
    target = optimizer.td_target(optimizer._tensors(sample))
    assert target.flatten().tolist() == pytest.approx([1.0, 0.1 + 0.5 * 4.0])


def test_each_reward_signal_has_its_own_discount():
    target_next = [torch.tensor([[[2.0, 0.0], [10.0, 20.0]]])]  # [B=1, S=2, n=2]
    masks = [torch.tensor([[True, True]])]
    rewards = torch.tensor([[1.0, 0.5]])
    discounts = torch.tensor([[0.99, 0.5]])
    # Actions are chosen on the summed Q: 12 vs 20 -> action 1, evaluated per signal.
    target = td_targets(target_next, masks, rewards, discounts, torch.zeros(1))
    assert target.flatten().tolist() == pytest.approx([1.0 + 0.99 * 0.0, 0.5 + 0.5 * 20.0])


def test_taken_q_gathers_each_branch():
    q = [torch.tensor([[[1.0, 2.0, 3.0]]]), torch.tensor([[[4.0, 5.0]]])]
    assert taken_q(q, torch.tensor([[2, 0]])).tolist() == [[[3.0, 4.0]]]


def test_large_margin_loss_hand_example():
    q = [torch.tensor([[[1.0, 2.0, 0.5]]])]  # Q(s, .) = 1, 2, 0.5; expert took 0
    masks = [torch.tensor([[True, True, True]])]
    # max(1 + 0, 2 + 0.8, 0.5 + 0.8) - 1 = 1.8
    assert large_margin_loss(q, torch.tensor([[0]]), masks, 0.8).item() == pytest.approx(1.8)
    # Forbidden actions do not count: without action 1, max(1, 1.3) - 1 = 0.3.
    masks = [torch.tensor([[True, False, True]])]
    assert large_margin_loss(q, torch.tensor([[0]]), masks, 0.8).item() == pytest.approx(0.3)
    # An expert action already ahead by the margin costs nothing.
    masks = [torch.tensor([[True, True, True]])]
    assert large_margin_loss(q, torch.tensor([[1]]), masks, 0.8).item() == pytest.approx(0.0)


def _optimizer_with_fixed_q(double_dqn: bool):
    """An optimizer whose networks answer fixed Q-values by observation (one-hot)."""
    optimizer = make_optimizer(behavior_spec(2, (3,)), trainer_settings(double_dqn=double_dqn))
    online_table = torch.tensor([[0.0, 0.0, 0.0], [1.0, 5.0, 3.0]])
    target_table = torch.tensor([[0.0, 0.0, 0.0], [4.0, 1.0, 6.0]])

    def fixed(table):
        return lambda inputs: [(inputs[0] @ table).unsqueeze(1)]  # [B, S=1, 3]

    optimizer.q_network.signal_q_values = fixed(online_table)
    optimizer.target_network.signal_q_values = fixed(target_table)
    return optimizer


@pytest.mark.parametrize(
    ("double_dqn", "dones", "truncated", "expected"),
    [
        (True, False, False, 1.0 + 0.729 * 1.0),  # online picks 1, target says 1.0
        (False, False, False, 1.0 + 0.729 * 4.0),  # target's allowed max: 4.0
        (True, True, False, 1.0),  # terminal: no bootstrap
        (True, False, True, 1.0 + 0.729 * 1.0),  # max-step cut: bootstrap stays
    ],
)
def test_optimizer_targets_from_a_replay_sample(double_dqn, dones, truncated, expected):
    optimizer = _optimizer_with_fixed_q(double_dqn)
    sample = replay_sample(
        obs=[[1.0, 0.0]],
        actions=[[0]],
        rewards={"extrinsic": [1.0]},
        discounts={"extrinsic": [0.729]},
        next_obs=[[0.0, 1.0]],
        dones=[dones],
        truncated=[truncated],
        next_masks=np.array([[True, True, False]]),
    )
    batch = optimizer._tensors(sample)
    target = optimizer.td_target(batch)
    assert target.shape == (1, 1)
    assert target.item() == pytest.approx(expected)


def test_update_moves_q_towards_the_target_and_returns_td_errors():
    torch.manual_seed(0)
    optimizer = make_optimizer(
        behavior_spec(2, (2,)), trainer_settings(learning_rate=1e-2, batch_size=4)
    )
    sample = replay_sample(
        obs=np.eye(2)[[0, 0, 1, 1]],
        actions=[[0], [1], [0], [1]],
        rewards={"extrinsic": [1.0, -1.0, 0.5, 0.0]},
        discounts={"extrinsic": [0.9] * 4},
        next_obs=np.eye(2)[[0, 0, 1, 1]],
        dones=[True] * 4,
        n_mask=2,
    )
    for _ in range(300):
        update = optimizer.update_from_replay(sample)
    assert update.td_errors.shape == (4,)
    q = optimizer.q_network.q_values([torch.eye(2)])[0].detach()
    assert q.flatten().tolist() == pytest.approx([1.0, -1.0, 0.5, 0.0], abs=0.05)
    assert int(optimizer.updates.count) == 300
