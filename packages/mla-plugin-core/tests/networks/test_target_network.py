import pytest
import torch

from mla_plugin_core.networks.target_network import (
    HardTargetUpdate,
    TargetUpdate,
    hard_update,
    make_target,
    soft_update,
)


def _net(seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    return torch.nn.Sequential(
        torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4), torch.nn.Linear(4, 2)
    )


def test_make_target_is_frozen_copy():
    online = _net(0)
    target = make_target(online)
    for p_t, p_o in zip(target.parameters(), online.parameters(), strict=True):
        assert torch.equal(p_t, p_o) and not p_t.requires_grad and p_t.data_ptr() != p_o.data_ptr()


def test_soft_update_is_polyak_average_in_place():
    online, target = _net(0), _net(1)
    before = [p.clone() for p in target.parameters()]
    pointers = [p.data_ptr() for p in target.parameters()]
    online[1].running_mean.fill_(3.0)
    soft_update(target, online, tau=0.25)
    for old, new, o, ptr in zip(
        before, target.parameters(), online.parameters(), pointers, strict=True
    ):
        assert torch.allclose(new, 0.25 * o + 0.75 * old)
        assert new.data_ptr() == ptr
    assert torch.equal(target[1].running_mean, online[1].running_mean)


def test_soft_update_does_not_track_gradients():
    online, target = _net(0), _net(1)
    soft_update(target, online, tau=0.5)
    assert all(p.grad_fn is None for p in target.parameters())


def test_soft_update_rejects_bad_tau():
    with pytest.raises(ValueError, match="tau"):
        soft_update(_net(0), _net(1), tau=0.0)


def test_hard_update_every_n():
    online, target = _net(0), _net(1)
    updater = HardTargetUpdate(interval=3)
    copied = [updater.step(target, online) for _ in range(7)]
    assert copied == [False, False, True, False, False, True, False]
    hard_update(target, online)
    assert all(
        torch.equal(a, b)
        for a, b in zip(target.state_dict().values(), online.state_dict().values(), strict=True)
    )


def test_target_update_counts_in_its_state_dict_and_loads_the_old_counter():
    online, target = torch.nn.Linear(2, 1), torch.nn.Linear(2, 1)
    update = TargetUpdate(interval=3)
    assert [update.step(target, online) for _ in range(4)] == [False, False, True, False]
    saved = update.state_dict()
    assert list(saved) == ["count"] and int(saved["count"]) == 4
    resumed = TargetUpdate(interval=3)
    resumed.load_state_dict({"count": torch.tensor(5)})  # mla-dqn 0.1.0's UpdateCounter
    assert resumed.step(target, online) and resumed.updates == 6
    soft = TargetUpdate(tau=0.5)
    assert soft.step(target, online) and soft.updates == 1
    with pytest.raises(ValueError, match="tau"):
        TargetUpdate(tau=0.0)
