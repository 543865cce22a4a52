"""The report: from trial folders (sweep_trial.json + TensorBoard events) to table, CSV, PNG."""

from __future__ import annotations

import csv
import json

import pytest
from torch.utils.tensorboard import SummaryWriter

from mla_sweep.cli import main
from mla_sweep.metrics import TRIAL_FILE
from mla_sweep.report import collect, write_report

TAG = "Environment/Cumulative Reward"


def trial(runs, label, seed, values, *, status="finished", max_steps=3000, lr=None, threshold=0.5):
    run_dir = runs / f"{label}_seed{seed}"
    writer = SummaryWriter(str(run_dir / "Basic"))
    for i, value in enumerate(values):
        writer.add_scalar(TAG, value, (i + 1) * 1000, walltime=100.0 + 10 * i)
    writer.close()
    info = {
        "sweep": "demo", "label": label, "overrides": {"lr": lr if lr is not None else label},
        "seed": seed, "metric": TAG, "behavior": "Basic", "mode": "max",
        "over_last_steps": 2000, "threshold": threshold, "max_steps": max_steps,
        "status": status,
    }  # fmt: skip
    (run_dir / TRIAL_FILE).write_text(json.dumps(info))


@pytest.fixture
def runs(tmp_path):
    runs = tmp_path / "demo" / "runs"
    trial(runs, "slow", 1, [0.0, 0.2, 0.4])
    trial(runs, "slow", 2, [0.0, 0.4, 0.6])
    trial(runs, "fast", 1, [0.3, 0.8, 0.9])
    # finished: its last summary (3000) is below max_steps, as when summary_freq does not
    # divide max_steps (PPO 3DBall: 492k of 500k); not stopped early
    trial(runs, "fast", 2, [0.5, 0.9, 0.9], max_steps=3500)
    trial(runs, "stopped", 1, [0.0], status="stopped", max_steps=3000)
    trial(runs, "unstable", 1, [0.1, 0.8, 0.2, 0.9])  # reaches 0.5, falls back, returns
    failed = runs / "broken_seed1"
    failed.mkdir()
    (failed / TRIAL_FILE).write_text(json.dumps({
        "sweep": "demo", "label": "broken", "overrides": {"lr": "broken"}, "seed": 1,
        "metric": TAG, "behavior": "Basic", "status": "failed",
    }))  # fmt: skip
    return tmp_path / "demo"


def test_configurations_best_first_with_statistics(runs):
    summaries = collect([runs])
    assert [s.label for s in summaries] == ["fast", "unstable", "slow", "stopped", "broken"]
    fast = summaries[0].row()
    # final = mean of the summaries in the last 2000 steps: (0.8 + 0.9) / 2 and (0.9 + 0.9) / 2
    assert fast["final_mean"] == pytest.approx(0.875)
    assert fast["final_std"] == pytest.approx(0.025)
    assert fast["final_min"] == pytest.approx(0.85)
    # windowed metric first >= 0.5: seed 1 at 2000 ((0.3+0.8)/2), seed 2 at 1000 (0.5)
    assert fast["steps_to_threshold"] == pytest.approx(1500)
    assert fast["reached_threshold"] == "2/2"
    assert fast["steps_per_second"] == pytest.approx(100.0)  # 2000 steps in 20 s
    # single summaries from the first >= 0.5 on: seed 1 0.8, 0.9; seed 2 0.5, 0.9, 0.9
    assert fast["held_threshold"] == "2/2" and fast["lowest_after_threshold"] == pytest.approx(0.5)
    slow = summaries[2].row()
    assert slow["reached_threshold"] == "1/2"
    assert slow["held_threshold"] == "1/2" and slow["lowest_after_threshold"] == pytest.approx(0.6)
    unstable = summaries[1].row()
    assert unstable["reached_threshold"] == "1/1"  # windowed (0.8 + 0.2) / 2 at 3000
    assert unstable["held_threshold"] == "0/1"
    assert unstable["lowest_after_threshold"] == pytest.approx(0.2)
    assert summaries[3].row()["held_threshold"] == "0/1"  # never reached: not held
    assert summaries[3].row()["stopped_early"] == 1
    assert fast["stopped_early"] == 0
    assert summaries[4].row()["failed"] == 1 and not summaries[4].trials


def test_report_files(runs, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["report", str(runs), "--out", str(out), "--title", "Demo"]) == 0
    table = (out / "report.md").read_text()
    lines = [line for line in table.splitlines() if line.startswith("| demo")]
    assert lines[0].startswith(
        "| demo: fast | 1 2 | 0.875 ± 0.025 | 0.85 | 1,500 (2/2) | 2/2 (0.5) | 100 |"
    )
    assert "steps to 0.5" in table
    rows = list(csv.DictReader(open(out / "report.csv")))
    assert [r["configuration"] for r in rows] == ["fast", "unstable", "slow", "stopped", "broken"]
    assert rows[1]["held_threshold"] == "0/1"
    png = (out / "curves.png").read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 10_000
    assert "demo: fast" in capsys.readouterr().out


def test_report_of_a_folder_without_trials(tmp_path):
    with pytest.raises(FileNotFoundError, match="no trials"):
        write_report([tmp_path], tmp_path / "out")


def test_held_counts_only_trials_that_reached(tmp_path):
    runs = tmp_path / "demo" / "runs"
    # one summary at 0.8, but the windowed metric (0.0 + 0.8) / 2 never reaches 0.5
    trial(runs, "spike", 1, [0.0, 0.1, 0.0, 0.8])
    row = collect([tmp_path / "demo"])[0].row()
    assert row["reached_threshold"] == "0/1"
    assert row["held_threshold"] == "0/1" and row["lowest_after_threshold"] is None


def test_a_trial_with_no_summary_yet_is_not_failed(tmp_path):
    runs = tmp_path / "demo" / "runs"
    trial(runs, "base", 1, [0.2, 0.4])
    waiting = runs / "base_seed2"  # started, no events written yet (a report while it runs)
    waiting.mkdir()
    info = json.loads((runs / "base_seed1" / TRIAL_FILE).read_text())
    (waiting / TRIAL_FILE).write_text(json.dumps({**info, "seed": 2, "status": "running"}))
    (summary,) = collect([tmp_path / "demo"])
    assert summary.failed == 0 and [t.info["seed"] for t in summary.trials] == [1]


def test_steps_per_second_leaves_out_the_time_a_resumed_run_was_down():
    from mla_sweep.metrics import Point, steps_per_second

    # 1000 steps per 10 s, then an hour's stop before the third summary, then 1000 per 10 s
    times = [0.0, 10.0, 3620.0, 3630.0, 3640.0]
    points = [Point((i + 1) * 1000, 0.0, t) for i, t in enumerate(times)]
    assert steps_per_second(points) == pytest.approx(100.0)
    assert steps_per_second(points[:2]) == pytest.approx(100.0)
    assert steps_per_second(points[:3]) == pytest.approx(100.0)  # two intervals, one a stop
    assert steps_per_second(points[:1]) is None


def test_progress_line_of_a_finished_run_below_max_steps(capsys):
    """PPO 3DBall ends at 492,000 of 500,000 (summary_freq 12,000): finished, not stopped."""
    import types

    from mla_sweep.runner import ProgressLines

    lines = ProgressLines(types.SimpleNamespace(max_steps=500_000))
    # Tune sets done=True on the last result of a trial its scheduler stops too
    for ended, step in ((True, 492_000), (False, 120_000)):
        result = {"env_steps": step, "done": True, "ended_by_itself": ended}
        trial = types.SimpleNamespace(config={"overrides": {}, "seed": 1}, last_result=result)
        lines.on_trial_complete(0, [], trial)
    out = capsys.readouterr().out.splitlines()
    assert out[0].endswith("finished at step 492000")
    assert out[1].endswith("stopped early by the scheduler at step 120000")


def test_a_trial_started_over_reads_no_summary_of_the_attempt_before(tmp_path):
    """--resume of a trial killed before its first checkpoint starts it over (--force); the
    old attempt's events stay until mlagents deletes them, and Tune and ASHA read them."""
    from mla_sweep.metrics import MetricReader

    runs = tmp_path / "demo" / "runs"
    trial(runs, "base", 1, [0.2, 0.4])  # wall times 100 and 110 s since epoch
    run_dir = runs / "base_seed1"
    assert len(MetricReader(run_dir, "Basic", TAG).poll()) == 2  # a resumed run: all its own
    assert MetricReader(run_dir, "Basic", TAG, since=105.0).poll() == [
        p for p in MetricReader(run_dir, "Basic", TAG).poll() if p.wall_time >= 105.0
    ]
    assert MetricReader(run_dir, "Basic", TAG, since=1000.0).poll() == []


def test_the_table_says_how_final_is_taken_and_names_the_best(runs):
    from mla_sweep.report import markdown_table

    table = markdown_table(collect([runs]))
    assert "final: mean of the summaries in the last 2,000 steps of each seed's run." in table
    assert "Best: **demo: fast** (final 0.875 over seeds 1 2)." in table


def test_without_a_threshold_there_are_no_threshold_columns(tmp_path):
    # the bug this catches: columns of dashes for a threshold nobody set
    from mla_sweep.report import markdown_table

    runs = tmp_path / "demo" / "runs"
    trial(runs, "a", 1, [0.1, 0.2], threshold=None)
    trial(runs, "b", 1, [0.3, 0.4], threshold=None)
    header = markdown_table(collect([tmp_path / "demo"])).splitlines()[0]
    assert "steps to" not in header and "held" not in header, header
    assert header.count("|") == 8  # 7 columns
