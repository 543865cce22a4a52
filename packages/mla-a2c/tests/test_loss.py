"""The A2C loss on a two-sample example computed by hand."""

import pytest
import torch

from mla_a2c.optimizer import a2c_loss, mean_bound_loss


def example(mask=(True, True)):
    return dict(
        # two action dimensions: log pi(a|s) = -1.5 and -2.0
        log_probs=torch.tensor([[-1.0, -0.5], [-2.0, 0.0]], requires_grad=True),
        entropy=torch.tensor([1.0, 3.0], requires_grad=True),
        advantages=torch.tensor([2.0, -1.0], requires_grad=True),
        values={
            "extrinsic": torch.tensor([1.0, 2.0], requires_grad=True),
            "curiosity": torch.tensor([0.0, 0.0], requires_grad=True),
        },
        returns={"extrinsic": torch.tensor([0.0, 4.0]), "curiosity": torch.tensor([1.0, 1.0])},
        loss_masks=torch.tensor(mask),
        value_loss_coef=0.5,
        beta=0.1,
    )


def test_loss_terms_match_hand_computation():
    loss = a2c_loss(**example())
    # policy: -mean(2 * -1.5, -1 * -2.0) = -mean(-3, 2) = 0.5
    assert loss.policy_loss.item() == pytest.approx(0.5)
    # value: mean over signals of MSE: extrinsic (1 + 4) / 2 = 2.5, curiosity 1 -> 1.75
    assert loss.value_loss.item() == pytest.approx(1.75)
    assert loss.entropy.item() == pytest.approx(2.0)
    # total: 0.5 + 0.5 * 1.75 - 0.1 * 2.0
    assert loss.total.item() == pytest.approx(1.175)


def test_padding_is_masked_out():
    loss = a2c_loss(**example(mask=(True, False)))
    assert loss.policy_loss.item() == pytest.approx(3.0)  # -(2 * -1.5)
    assert loss.value_loss.item() == pytest.approx(1.0)  # mean(1, 1)
    assert loss.total.item() == pytest.approx(3.0 + 0.5 * 1.0 - 0.1 * 1.0)


def test_gradients_flow_to_policy_and_values_not_to_advantages():
    inputs = example()
    a2c_loss(**inputs).total.backward()
    # d total / d log_prob_{t,i} = -A_t / B for every action dimension i
    expected = torch.tensor([[-1.0, -1.0], [0.5, 0.5]])
    torch.testing.assert_close(inputs["log_probs"].grad, expected)
    # d total / d V_t = value_loss_coef * (1 / n_signals) * 2 (V_t - G_t) / B
    torch.testing.assert_close(inputs["values"]["extrinsic"].grad, torch.tensor([0.25, -0.5]))
    # d total / d H_t = -beta / B
    torch.testing.assert_close(inputs["entropy"].grad, torch.tensor([-0.05, -0.05]))
    assert inputs["advantages"].grad is None


def test_bound_loss_is_zero_inside_the_clip_and_pulls_means_back_beyond():
    mu = torch.tensor([[2.9, -3.0], [4.0, -5.0]], requires_grad=True)
    # row 0 inside [-3, 3]; row 1: (4 - 3)^2 + (5 - 3)^2 = 5; mean over rows 2.5
    bound = mean_bound_loss(mu)
    assert bound.item() == pytest.approx(2.5)
    loss = a2c_loss(**example(), bound_loss=bound, action_bound_coef=0.2)
    assert loss.bound_loss.item() == pytest.approx(2.5)
    assert loss.total.item() == pytest.approx(1.175 + 0.2 * 2.5)
    loss.total.backward()
    # d / d mu = coef * 2 (|mu| - 3) sign(mu) / B: a gradient step moves each mean inwards
    torch.testing.assert_close(mu.grad, torch.tensor([[0.0, 0.0], [0.2, -0.4]]))


def test_bound_loss_without_continuous_actions_is_zero():
    assert mean_bound_loss(torch.zeros(4, 0)).item() == 0.0
    assert a2c_loss(**example()).bound_loss.item() == 0.0
