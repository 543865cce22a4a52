"""mlagents' end-of-run files written atomically, and an unreadable training_status.json
refused on --resume in one line (run_files)."""

import hashlib
import json
import subprocess
import sys
from types import SimpleNamespace

import mlagents.trainers.learn as learn
import pytest
import yaml
from mlagents.trainers.training_status import GlobalTrainingStatus

from mla_plugin_core.host import config_errors, run_files
from mla_plugin_core.io.resume import ResumeError


@pytest.fixture(autouse=True)
def _installed():
    config_errors.install()


class Unwritable:
    """A settings value yaml cannot represent: the dump fails after writing part of it."""

    def __reduce_ex__(self, protocol):
        raise RuntimeError("cannot be written")


def test_mlagents_end_of_run_writes_are_replaced_and_keep_the_old_file_on_failure(tmp_path):
    assert learn.write_run_options.__wrapped__ is run_files.write_run_options
    learn.write_run_options(str(tmp_path), SimpleNamespace(as_dict=lambda: {"b": 1, "a": 2}))
    written = (tmp_path / "configuration.yaml").read_text()
    assert written == "b: 1\na: 2\n"  # mlagents' order, not sorted
    # mlagents' own write opens the destination first: a failure half-way truncated it
    broken = SimpleNamespace(as_dict=lambda: {"first": "x" * 10_000, "then": Unwritable()})
    with pytest.raises(RuntimeError, match="cannot be written"):
        learn.write_run_options(str(tmp_path), broken)
    assert (tmp_path / "configuration.yaml").read_text() == written
    assert sorted(p.name for p in tmp_path.iterdir()) == ["configuration.yaml"]

    learn.write_timing_tree(str(tmp_path))
    assert "total" in json.loads((tmp_path / "timers.json").read_text())
    GlobalTrainingStatus.saved_state["Basic"] = {"checkpoints": [{"steps": 7}]}
    try:
        learn.write_training_status(str(tmp_path))
    finally:
        del GlobalTrainingStatus.saved_state["Basic"]
    status = json.loads((tmp_path / "training_status.json").read_text())
    assert status["Basic"] == {"checkpoints": [{"steps": 7}]} and "metadata" in status


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"", "empty"),
        (
            b'{"metadata": {"stats_format_version"',
            "Expecting ':' delimiter: line 1 column 37 (char 36)",
        ),
        (b"\xff\xfe{}", "not UTF-8 text"),
    ],
)
def test_an_unreadable_status_is_refused_in_one_line(tmp_path, content, reason):
    path = tmp_path / "training_status.json"
    path.write_bytes(content)
    with pytest.raises(ResumeError) as refused:
        GlobalTrainingStatus.load_state(str(path))
    assert str(refused.value) == (
        f"cannot resume {path}: it is not valid JSON ({reason}; a run killed while writing "
        "it?): move it away to resume without mlagents' list of checkpoints and curriculum "
        "lessons, or start a new --run-id"
    )
    assert path.read_bytes() == content


def test_a_readable_or_missing_status_is_mlagents_business(tmp_path, caplog):
    path = tmp_path / "training_status.json"
    GlobalTrainingStatus.load_state(str(path))  # missing: mlagents warns and goes on
    assert "Training status file not found" in caplog.text
    path.write_text(json.dumps({"Basic": {}}))
    with pytest.raises(Exception, match="Metadata not found") as incompatible:
        GlobalTrainingStatus.load_state(str(path))  # mlagents' own check of its format
    assert not isinstance(incompatible.value, ResumeError)
    path.write_text(json.dumps({"metadata": {}, "Basic": {"lesson": 3}}))
    try:
        GlobalTrainingStatus.load_state(str(path))
        assert GlobalTrainingStatus.saved_state["Basic"] == {"lesson": 3}
    finally:
        GlobalTrainingStatus.saved_state.pop("Basic", None)


def _tree(folder):
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_mlagents_learn_resume_of_a_truncated_status_stops_in_one_line(tmp_path):
    """The real CLI: a run killed while mlagents wrote its status, then ``--resume``."""
    config = tmp_path / "ppo.yaml"
    config.write_text(yaml.safe_dump({"behaviors": {"Basic": {"trainer_type": "ppo"}}}))
    run_logs = tmp_path / "results" / "killed" / "run_logs"
    run_logs.mkdir(parents=True)
    (run_logs / "training_status.json").write_text('{"metadata": {"stats_format_ver')
    before = _tree(tmp_path)
    done = subprocess.run(
        [sys.executable, "-m", "mlagents.trainers.learn", str(config), "--run-id", "killed"]
        + ["--results-dir", str(tmp_path / "results"), "--resume"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 1, done.stderr[-3000:]
    assert "Traceback" not in done.stderr
    ours = [line for line in done.stderr.splitlines() if line.startswith("mlagents-learn:")]
    assert ours == [
        f"mlagents-learn: cannot resume {run_logs / 'training_status.json'}: it is not valid "
        "JSON (Unterminated string starting at: line 1 column 15 (char 14); a run killed while writing it?): "
        "move it away to resume without mlagents' list of checkpoints and curriculum "
        "lessons, or start a new --run-id"
    ]
    assert _tree(tmp_path) == before
