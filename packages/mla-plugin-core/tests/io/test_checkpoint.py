"""Checkpoints: atomic writes with normal permissions, stale temporary files, a strict
``--resume`` that refuses in one line and writes nothing."""

import logging
import os
import subprocess
import sys
import textwrap
import types

import pytest
import torch

from mla_plugin_core.host import config_errors
from mla_plugin_core.host.config_errors import ResumeError, refusing_resume
from mla_plugin_core.io.checkpoint import (
    METADATA_KEY,
    PARTIAL_ONNX_NAME,
    AtomicTorchModelSaver,
    resume_mismatch,
)
from mla_plugin_core.util.atomic_file import atomic_write, remove_stale_temporaries


def umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_atomic_write_gives_the_mode_open_would_give(tmp_path):
    with atomic_write(tmp_path / "a.npz") as file:
        file.write(b"x")
    with open(tmp_path / "b.npz", "wb") as file:
        file.write(b"x")
    assert (tmp_path / "a.npz").stat().st_mode == (tmp_path / "b.npz").stat().st_mode
    assert (tmp_path / "a.npz").stat().st_mode & 0o777 == 0o666 & ~umask()


def test_stale_temporaries_of_ours_are_removed_and_nothing_else(tmp_path):
    ours = [
        ".checkpoint.pt.k3j_9a0z.tmp",
        ".replay_buffer.npz.0a1b2c3d.tmp",
        ".Basic-9.partial.onnx",
    ]
    others = [".hidden", "notes.tmp", ".x.tmp", "checkpoint.pt", ".x.pt.toolong12.tmp"]
    for name in ours + others:
        (tmp_path / name).write_bytes(b"")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / ours[0]).write_bytes(b"")
    removed = remove_stale_temporaries(tmp_path, [PARTIAL_ONNX_NAME])
    assert sorted(os.path.basename(p) for p in removed) == sorted(ours)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(others + ["sub"])
    assert (tmp_path / "sub" / ours[0]).exists()


class Net(torch.nn.Module):
    def __init__(self, hidden=4, head=True):
        super().__init__()
        self.body = torch.nn.Linear(3, hidden)
        if head:
            self.head = torch.nn.Linear(hidden, 2)


def modules(hidden=4, head=True):
    net = Net(hidden, head)
    adam = torch.optim.Adam(net.parameters())
    out = net.body(torch.zeros(1, 3))
    (net.head(out) if head else out).sum().backward()
    adam.step()  # Adam now holds a state per parameter
    return {"Policy": net, "Optimizer:adam": adam}


def saved(mods, trainer_type="dqn"):
    content = {name: module.state_dict() for name, module in mods.items()}
    content[METADATA_KEY] = {"trainer_type": trainer_type, "step": 10}
    return content


@pytest.mark.parametrize(
    "now, trainer_type, expected",
    [
        (dict(hidden=4), "dqn", None),
        (
            dict(hidden=8),
            "dqn",
            "Policy: network shape differs (body.weight [4, 3] saved, [8, 3] now)",
        ),
        (
            dict(head=False),
            "dqn",
            "Policy: network layers differ (only in the checkpoint: head.bias, head.weight)",
        ),
        (dict(hidden=4), "a2c", "saved by trainer_type 'dqn', the configuration asks for 'a2c'"),
    ],
)
def test_resume_mismatch_names_the_first_difference(now, trainer_type, expected):
    assert resume_mismatch(saved(modules()), modules(**now), trainer_type) == expected


def test_resume_mismatch_of_modules_and_of_optimizer_state():
    before = saved(modules())
    now = modules()
    del before["Optimizer:adam"]
    assert resume_mismatch(before, now, "dqn") == (
        "modules differ (only in this configuration: Optimizer:adam)"
    )
    before = saved(modules())
    before["Optimizer:adam"]["param_groups"][0]["params"] = [0, 1]
    assert resume_mismatch(before, now, "dqn") == (
        "Optimizer:adam: optimizer parameters differ ([2] tensors per group saved, [4] now)"
    )
    before = saved(modules())
    before["Optimizer:adam"]["state"][0]["exp_avg"] = torch.zeros(9, 3)
    assert resume_mismatch(before, now, "dqn") == (
        "Optimizer:adam: optimizer state differs (exp_avg of parameter 0: [9, 3] saved, [4, 3] now)"
    )


def saver(tmp_path, load, trainer_type="ppo", keep_checkpoints=5, **kwargs):
    # What the saver reads of TrainerSettings (whose trainer types need registering).
    settings = types.SimpleNamespace(
        init_path=None, keep_checkpoints=keep_checkpoints, trainer_type=trainer_type
    )
    result = AtomicTorchModelSaver(settings, str(tmp_path), load)
    result.modules.update(modules(**kwargs))
    return result


def test_checkpoint_records_trainer_type_and_step_and_resume_is_checked(tmp_path):
    saver(tmp_path, load=False).save_checkpoint("Basic", 10)
    content = torch.load(tmp_path / "checkpoint.pt")
    assert content[METADATA_KEY] == {"trainer_type": "ppo", "step": 10}
    for name in ("checkpoint.pt", "Basic-10.pt"):
        assert (tmp_path / name).stat().st_mode & 0o777 == 0o666 & ~umask()
    saver(tmp_path, load=True).check_resumable()  # fits
    files = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    with pytest.raises(ResumeError) as refused:
        saver(tmp_path, load=True, hidden=8).initialize_or_load()
    assert str(refused.value) == (
        f"cannot resume {tmp_path / 'checkpoint.pt'}: Policy: network shape differs "
        "(body.weight [4, 3] saved, [8, 3] now); resume with the settings it was saved with "
        "(configuration.yaml of the run), or start a new run (another --run-id, or --force "
        "without --resume)"
    )
    with pytest.raises(ResumeError, match="saved by trainer_type 'ppo', the configuration asks"):
        saver(tmp_path, load=True, trainer_type="sac").initialize_or_load()
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == files


def test_resume_without_checkpoint_or_with_a_damaged_one_is_one_line(tmp_path):
    with pytest.raises(ResumeError) as refused:
        saver(tmp_path, load=True).initialize_or_load()
    assert str(refused.value) == (
        f"cannot resume {tmp_path / 'checkpoint.pt'}: no checkpoint yet (the run stopped "
        "before its first checkpoint); run without --resume (with --force to reuse the run id)"
    )
    (tmp_path / "checkpoint.pt").write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(ResumeError, match=r"checkpoint.pt: unreadable \(") as refused:
        saver(tmp_path, load=True).initialize_or_load()
    assert "\n" not in str(refused.value)


def test_start_removes_half_written_files_even_when_it_refuses(tmp_path):
    # the bug this catches: a refused resume left the killed run's hidden temporary file
    # behind until the next --force (#27); complete files stay as they were
    saver(tmp_path, load=False).save_checkpoint("Basic", 10)
    complete = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    (tmp_path / ".checkpoint.pt.abcd1234.tmp").write_bytes(b"half")
    with pytest.raises(ResumeError):
        saver(tmp_path, load=True, hidden=8).initialize_or_load()
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == complete


def test_refusing_resume_is_true_only_while_a_resume_error_unwinds():
    seen = []
    with pytest.raises(ResumeError):
        try:
            raise ResumeError("cannot resume x: y")
        finally:
            seen.append(refusing_resume())
    with pytest.raises(ValueError):
        try:
            raise ValueError
        finally:
            seen.append(refusing_resume())
    assert seen == [True, False] and not refusing_resume()


def test_resume_error_is_one_line_and_mlagents_end_of_run_writes_are_skipped(tmp_path):
    script = textwrap.dedent(
        f"""
        import sys, types
        learn = types.ModuleType("mlagents.trainers.learn")
        learn.__spec__ = types.SimpleNamespace(name="mlagents.trainers.learn")
        def write_run_options(folder, options):
            raise AssertionError("replaced by the atomic write")
        learn.write_run_options = write_run_options
        sys.modules["mlagents.trainers.learn"] = learn
        from mla_plugin_core.host import config_errors
        config_errors.install()
        options = types.SimpleNamespace(as_dict=lambda: {{"written": 1}})
        try:
            learn.write_run_options({str(tmp_path)!r}, options)
            raise config_errors.ResumeError("cannot resume a: b; c")
        finally:
            import os
            os.remove({str(tmp_path / "configuration.yaml")!r})
            learn.write_run_options({str(tmp_path)!r}, options)  # skipped: nothing written
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 1
    # Importing mlagents' torch setup may warn first (mlagents 0.30/1.0 on torch 2).
    lines = [line for line in done.stderr.splitlines() if not line.startswith(" ")]
    ours = [line for line in lines if "Warning" not in line]
    assert ours == ["mlagents-learn: cannot resume a: b; c"], done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "configuration.yaml").exists()
    assert config_errors.ResumeError.__mro__[1].__name__ == "TrainerConfigError"


def test_the_export_log_names_the_final_file_not_the_temporary_one(
    tiny_plugin_path, tmp_path, caplog
):
    from mlagents.trainers.torch_entities import model_serialization
    from mlagents_envs.base_env import ActionSpec
    from tiny_plugin import TinySettings, TinyTrainer

    from mla_plugin_core.testing.builders import (
        make_trainer,
        trainer_settings,
        vector_behavior_spec,
    )

    spec = vector_behavior_spec(ActionSpec.create_discrete((3,)))
    trainer = make_trainer(
        TinyTrainer, trainer_settings("tiny_ppo", TinySettings()), spec, tmp_path
    )
    exporter_log = logging.getLogger(model_serialization.__name__)  # "Exported <path>"
    with caplog.at_level("DEBUG", logger=exporter_log.name):
        onnx_path, _ = trainer.model_saver.save_checkpoint("Basic", 9998)
    final = str(tmp_path / "Basic-9998.onnx")
    assert onnx_path == final and os.path.exists(final)
    messages = [r.getMessage() for r in caplog.records if r.name == exporter_log.name]
    assert f"Exported {final}" in messages
    assert [m for m in messages if "partial" in m] == []
    assert exporter_log.filters == []  # the renaming ends with the export


def test_the_final_model_copy_is_whole_or_not_there(tmp_path, monkeypatch):
    # the bug this catches: mlagents copies <run>/<behavior>.onnx in place, so a kill during
    # the copy left half a model where users take it from for Unity
    import shutil

    run = tmp_path / "run"
    run.mkdir()
    (run / "Basic-100.onnx").write_bytes(b"new model " * 1000)
    (tmp_path / "run.onnx").write_bytes(b"the model of an earlier run")
    models = saver(run, load=False)
    models.model_path = str(tmp_path / "run")  # <results>/<run>, as mlagents sets it

    def killed_half_way(source, destination, *args):
        destination.write(source.read(100))
        raise KeyboardInterrupt  # as a kill or Ctrl-C would stop it

    monkeypatch.setattr(shutil, "copyfileobj", killed_half_way)
    with pytest.raises(KeyboardInterrupt):
        models.copy_final_model(str(run / "Basic-100.pt"))
    assert (tmp_path / "run.onnx").read_bytes() == b"the model of an earlier run"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run", "run.onnx"]  # no temporary
    monkeypatch.undo()
    models.copy_final_model(str(run / "Basic-100.pt"))
    assert (tmp_path / "run.onnx").read_bytes() == b"new model " * 1000


def test_a_run_killed_before_checkpoint_pt_names_the_complete_step_checkpoint(tmp_path):
    # the bug this catches: killed between Basic-<step>.pt and checkpoint.pt, the resume said
    # "no checkpoint yet" and told the user to start over, a complete checkpoint beside it
    saver(tmp_path, load=False).save_checkpoint("Basic", 10)
    saver(tmp_path, load=False).save_checkpoint("Basic", 20)
    (tmp_path / "checkpoint.pt").unlink()
    (tmp_path / "Basic-30.pt").write_bytes(b"cut short")  # not a checkpoint
    files = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    with pytest.raises(ResumeError) as refused:
        saver(tmp_path, load=True).check_resumable()
    assert str(refused.value) == (
        f"cannot resume {tmp_path / 'checkpoint.pt'}: it was not written (the run stopped "
        f"while saving), but {tmp_path / 'Basic-20.pt'} is complete: to resume from it, "
        f"cp '{tmp_path / 'Basic-20.pt'}' '{tmp_path / 'checkpoint.pt'}' and run again "
        "with --resume"
    )
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == files  # read only
    (tmp_path / "checkpoint.pt").write_bytes((tmp_path / "Basic-20.pt").read_bytes())
    saver(tmp_path, load=True).check_resumable()  # the advice works


def test_checkpoints_of_killed_attempts_are_pruned_as_keep_checkpoints_says(tmp_path):
    """mlagents prunes from training_status.json, written only at the end of a run: the step
    checkpoints of killed attempts piled up. Saving prunes by the names on disk."""
    for step in (100, 200, 300):  # left by killed attempts (both kinds of file)
        for suffix in (".pt", ".onnx"):
            (tmp_path / f"Basic-{step}{suffix}").write_bytes(b"old")
    (tmp_path / "Basic-900.pt").write_bytes(b"an attempt that went further")
    (tmp_path / "Other-100.pt").write_bytes(b"another behavior's name")
    (tmp_path / "Basic-notes.txt").write_text("not a checkpoint")
    saver(tmp_path, load=False, keep_checkpoints=2).save_checkpoint("Basic", 400)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "Basic-300.onnx",
        "Basic-300.pt",
        "Basic-400.pt",
        "Basic-900.pt",
        "Basic-notes.txt",
        "Other-100.pt",
        "checkpoint.pt",
    ]  # fmt: skip  (no exporter here, so no Basic-400.onnx)
    # keep_checkpoints: 0 keeps every checkpoint, as in mlagents
    saver(tmp_path, load=False, keep_checkpoints=0).save_checkpoint("Basic", 500)
    assert (tmp_path / "Basic-300.pt").exists() and (tmp_path / "Basic-400.pt").exists()
