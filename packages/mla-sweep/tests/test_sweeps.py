"""Whole sweeps of the real ``mlagents-learn`` on Ray: one two-node cluster for the module.

The cluster runs on this machine (two raylets, one CPU each), so trials that run at the same
time share this machine's ports: each gets its own reserved range. These tests run on the
newest supported mlagents only (see sweep_testkit), a few short DQN runs on Basic each.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path

import pytest
import ray
import yaml
from mla_ray.local_ray import start_cluster, stop_cluster
from sweep_testkit import TINY_DQN, e2e_enabled

from mla_sweep.config import load_sweep
from mla_sweep.metrics import TRIAL_FILE
from mla_sweep.report import write_report
from mla_sweep.runner import run_sweep
from mla_sweep.trial import LOG_FILE
from mla_sweep.watchdog import STOP_BOUND_SECONDS

pytestmark = pytest.mark.skipif(
    not e2e_enabled(), reason="end-to-end sweeps run against the newest mlagents only"
)


@pytest.fixture(scope="module")
def cluster():
    nodes = start_cluster(num_cpus=1, worker_cpus=(1,))
    ray.init(address=nodes.address, log_to_driver=False)
    yield nodes
    ray.shutdown()
    stop_cluster(nodes)


def trials(storage: Path, name: str) -> list[dict]:
    infos = [json.loads(p.read_text()) for p in (storage / name / "runs").glob(f"*/{TRIAL_FILE}")]
    return sorted(infos, key=lambda i: (i["label"], i["seed"]))


def processes_on_port(port: int) -> list[str]:
    """Command lines of live processes mentioning ``port`` (trainer or environment)."""
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            args = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if str(port).encode() in args:
            found.append(b" ".join(args).decode(errors="replace"))
    return found


def _status(pid: str) -> dict[str, str]:
    lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    return dict(line.split(":\t", 1) for line in lines if ":\t" in line)


def trial_pids(port: int) -> set[int]:
    """The processes mentioning ``port`` (trainer, environment worker, environment) and
    their children (the trial's watchdog)."""
    parents, pids = {}, set()
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            parents[int(pid)] = int(_status(pid)["PPid"])
            if str(port).encode() in Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0"):
                pids.add(int(pid))
        except OSError:
            continue
    return pids | {pid for pid, parent in parents.items() if parent in pids}


def running(pids: set[int]) -> set[int]:
    """Those of ``pids`` that still run (a zombie has ended)."""
    left = set()
    for pid in pids:
        try:
            if not _status(str(pid))["State"].startswith("Z"):
                left.add(pid)
        except OSError:
            continue
    return left


class TrialProcesses(threading.Thread):
    """While a sweep runs: each trial's ``mlagents-learn`` (and every process under it) with
    its allowed CPUs and OMP_NUM_THREADS, sampled twice a second."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.samples: list[dict[str, tuple[str, set[str], str]]] = []
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(0.5):
            parents, cpus, trainers = {}, {}, []
            for pid in filter(str.isdigit, os.listdir("/proc")):
                try:
                    status = _status(pid)
                    if b"mla_sweep.learn" in Path(f"/proc/{pid}/cmdline").read_bytes():
                        environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
                        omp = next((v[16:].decode() for v in environ
                                    if v.startswith(b"OMP_NUM_THREADS=")), "")  # fmt: skip
                        trainers.append((pid, omp))
                except OSError:
                    continue
                parents[pid], cpus[pid] = status["PPid"], status["Cpus_allowed_list"]
            # mlagents' env worker is a fork of mlagents-learn: the same command line
            learners = {pid for pid, _ in trainers}
            sample = {}
            for trainer, omp in trainers:
                if parents.get(trainer) in learners:
                    continue
                below = set()
                for pid in cpus:
                    ancestor = parents.get(pid)
                    while ancestor not in (None, "0", "1", trainer):
                        ancestor = parents.get(ancestor)
                    if ancestor == trainer:
                        below.add(cpus[pid])
                sample[trainer] = (cpus[trainer], below, omp)
            self.samples.append(sample)


@pytest.mark.slow_cluster  # nox -s slow
def test_resume_after_the_driver_is_killed(sweep_file, tmp_path):
    path = sweep_file(
        # one trial at a time on the whole machine (one core each would only be slower)
        {"seeds": [1, 2], "max_concurrent": 1, "resources": {"cpu": 2}},
        name="resumable",
    )
    storage = tmp_path / "storage"
    command = [sys.executable, "-m", "mla_sweep.cli", "run", str(path), "--storage",
               str(storage), "--num-cpus", "2"]  # fmt: skip
    # a $TMPDIR too deep for Ray's Unix sockets under it (as nox's in a long checkout path)
    deep = tmp_path / ("deep-tmp-" + "d" * 60)
    deep.mkdir()
    env = {**os.environ, "TMPDIR": str(deep)}
    env.pop("RAY_TMPDIR", None)
    log = open(tmp_path / "driver.log", "w")
    driver = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
    deadline = time.monotonic() + 600
    runs = storage / "resumable" / "runs"
    while time.monotonic() < deadline:
        infos = trials(storage, "resumable") if runs.is_dir() else []
        # kill once the first trial finished and the second wrote its first checkpoint
        if any(i["status"] == "finished" for i in infos) and len(infos) == 2:
            if len(list(runs.glob("*/run_logs/training_status.json"))) == 2:
                break
        assert driver.poll() is None, (tmp_path / "driver.log").read_text()
        time.sleep(0.5)
    else:
        pytest.fail("the first trial did not finish in time")
    driver.send_signal(signal.SIGKILL)
    driver.wait()
    second = next(i for i in trials(storage, "resumable") if i["status"] == "running")
    # the killed driver's trial goes too (its Ray worker dies; the trial's watchdog stops it)
    for _ in range(120):
        if not processes_on_port(second["base_port"]):
            break
        time.sleep(1)
    assert processes_on_port(second["base_port"]) == []

    resumed = subprocess.run(
        [*command, "--resume"], capture_output=True, text=True, timeout=900, env=env
    )
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    infos = trials(storage, "resumable")
    assert [i["status"] for i in infos] == ["finished", "finished"]
    logs = sorted((storage / "resumable" / "runs").glob("*/mlagents-learn.log"))
    launches = sorted(log.read_text().count("$ ") for log in logs)
    assert launches == [1, 2]  # the finished trial did not run again; the other continued
    assert "--resume" in "".join(log.read_text() for log in logs)


def test_ctrl_c_of_the_driver_stops_its_trial_as_ctrl_c_does(sweep_file, tmp_path):
    trainer = json.loads(json.dumps(TINY_DQN))
    trainer["behaviors"]["Basic"]["max_steps"] = 200_000  # far from done when interrupted
    path = sweep_file({"seeds": [1], "resources": {"cpu": 2}}, name="ctrl-c", trainer=trainer)
    storage = tmp_path / "storage"
    command = [sys.executable, "-m", "mla_sweep.cli", "run", str(path), "--storage",
               str(storage), "--num-cpus", "2"]  # fmt: skip
    driver_log = tmp_path / "driver.log"
    # in a process group of its own, as a shell runs a command: Ctrl-C signals all of it
    driver = subprocess.Popen(
        command, stdout=driver_log.open("w"), stderr=subprocess.STDOUT, start_new_session=True
    )
    try:
        deadline = time.monotonic() + 300
        log = None
        while log is None or "Step: 2000." not in log.read_text():
            assert driver.poll() is None and time.monotonic() < deadline, driver_log.read_text()
            log = next((storage / "ctrl-c" / "runs").glob("*/mlagents-learn.log"), None)
            time.sleep(0.5)
        port = trials(storage, "ctrl-c")[0]["base_port"]
        pids = trial_pids(port)
        assert len(pids) >= 3  # trainer, environment worker, environment (and watchdog)
        os.killpg(driver.pid, signal.SIGINT)
        driver.wait(timeout=120)
    finally:
        if driver.poll() is None:
            os.killpg(driver.pid, signal.SIGKILL)
    # Tune kills a trial's Ray worker within 10 s of Ctrl-C, which ends the trial's lifeline
    deadline = time.monotonic() + 10 + STOP_BOUND_SECONDS
    while running(pids) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert running(pids) == set() and processes_on_port(port) == []
    # mlagents-learn got SIGINT, as from Ctrl-C, and saved where it was: a checkpoint that loads
    text = log.read_text()
    assert "Learning was interrupted" in text, text[-3000:]
    checkpoint = json.loads((log.parent / "run_logs" / "training_status.json").read_text())
    last = checkpoint["Basic"]["checkpoints"][-1]
    assert f"Exported {last['file_path']}" in text.split("Learning was interrupted")[1]
    torch = pytest.importorskip("torch")
    for saved in (last["auxillary_file_paths"][0], log.parent / "Basic" / "checkpoint.pt"):
        [step] = torch.load(saved)["global_step"].values()  # mlagents' GlobalSteps module
        assert int(step) == last["steps"]


def test_two_nodes_parallel_trials_a_failing_one_and_the_report(
    cluster, sweep_file, tmp_path, capsys
):
    path = sweep_file(
        {
            "seeds": [1, 2],
            # a checkpoint that does not exist: those two trials fail when mlagents loads it
            "grid": {"behaviors.Basic.init_path": [None, "/nonexistent/Basic/checkpoint.pt"]},
            "metric": {"over_last_steps": 1000, "threshold": 0.5},
            "resources": {"cpu": 1},
        },
        name="cluster",
    )
    storage = tmp_path / "storage"
    watch = TrialProcesses()
    watch.start()
    try:
        results = run_sweep(load_sweep(path), storage, address=cluster.address)
    finally:
        watch.done.set()
        watch.join()
    # resources: {cpu: 1}: each trial's trainer and environment on one core of its own,
    # one thread per pool; trials running at the same time on different cores
    seen = [trainer for sample in watch.samples for trainer in sample.values()]
    assert seen and all(c.isdigit() and below <= {c} and omp == "1" for c, below, omp in seen)
    assert any(below for _, below, _ in seen)  # the environments were seen too
    together = [sorted(c for c, _, _ in s.values()) for s in watch.samples if len(s) > 1]
    assert together and all(len(set(cores)) == len(cores) for cores in together), together
    infos = trials(storage, "cluster")
    finished = [i for i in infos if i["status"] == "finished"]
    failed = [i for i in infos if i["status"] == "failed"]
    assert [i["seed"] for i in finished] == [1, 2] and len(failed) == 2, infos
    assert all(i["label"] == "init_path=None" for i in finished)
    assert len({i["node"] for i in infos}) == 2  # trials ran on both nodes
    assert len({i["base_port"] for i in infos}) == 4
    assert all(len(i["cpus"]) == 1 for i in infos)
    errors = [r.error for r in results if r.error is not None]
    assert len(errors) == 2
    printed = capsys.readouterr().out
    assert "FAILED" in printed and "last lines of" in printed and "exited with status" in printed
    # progress lines name the step and the budget; which steps get one depends on the run
    # (a summary with no finished episode has no reward to report)
    assert re.search(r"init_path=None seed [12]: step \d+/1500 ", printed), printed
    table, files = write_report([storage / "cluster"], tmp_path / "report")
    assert "| cluster: init_path=None | 1 2 |" in table
    assert files[2].read_bytes().startswith(b"\x89PNG")


def test_asha_stops_a_poor_trial_and_its_processes_exit(cluster, sweep_file, tmp_path):
    # Trials run one after the other, so the second meets the first one's result at the
    # rung. The metric is one the trainer reports every summary and that the grid sets
    # (DQN's learning rate, constant), so the order is certain: ASHA's mechanics, not
    # learning, are under test. The first rung (500) is far from max_steps (4000): the
    # stopped trial cannot reach its end in the moment Tune takes to stop it (with the rung
    # at 1000 of 1500 it once did, and was rightly reported finished).
    trainer = json.loads(json.dumps(TINY_DQN))
    trainer["behaviors"]["Basic"]["max_steps"] = 4000
    path = sweep_file(
        {
            "seeds": [1],
            "grid": {"behaviors.Basic.hyperparameters.learning_rate": [1.0e-3, 1.0e-5]},
            "metric": {"name": "Policy/Learning Rate"},
            "scheduler": {"asha": {"grace_period": 500, "reduction_factor": 2}},
            "max_concurrent": 1,
            "resources": {"cpu": 1},
        },
        name="asha",
        trainer=trainer,
    )
    storage = tmp_path / "storage"
    run_sweep(load_sweep(path), storage, address=cluster.address)
    good, poor = trials(storage, "asha")
    assert good["label"] == "learning_rate=0.001" and good["status"] == "finished"
    assert poor["status"] == "stopped", poor
    run = storage / "asha" / "runs"
    poor_dir = next(p for p in run.iterdir() if p.name.startswith("learning_rate=1e-05"))
    # SIGINT: mlagents saved the model of the interrupted run
    assert list((poor_dir / "Basic").glob("*.onnx")) or (poor_dir / "Basic.onnx").exists()
    # mlagents-learn took the SIGINT and ended by itself (not SIGTERM/SIGKILL of the
    # watchdog's escalation, a negative code). Its exit status is mlagents' own: one CI run
    # saw 1 after a saved model, not reproduced in 30 interrupted runs (see the log below)
    log = (poor_dir / LOG_FILE).read_text()
    assert poor["returncode"] is not None and poor["returncode"] >= 0, log[-4000:]
    assert "Learning was interrupted" in log, log[-4000:]
    if poor["returncode"] != 0:  # shown in the warnings summary: evidence for next time
        warnings.warn(
            f"mlagents-learn exited {poor['returncode']} after SIGINT:\n{log[-3000:]}", stacklevel=1
        )
    time.sleep(2)
    assert processes_on_port(poor["base_port"]) == []


def test_optuna_suggests_the_trials_values_and_the_report_ranks_them(cluster, sweep_file, tmp_path):
    optuna = pytest.importorskip("optuna")
    key = "behaviors.Basic.hyperparameters.learning_rate"
    trainer = json.loads(json.dumps(TINY_DQN))
    trainer["behaviors"]["Basic"]["max_steps"] = 500  # one summary: enough here
    path = sweep_file(
        {
            "seeds": [3],
            "search": {key: {"loguniform": [1.0e-4, 1.0e-2]}},
            "samples": 2,
            "search_alg": "optuna",
            "resources": {"cpu": 1},
        },
        name="optuna",
        trainer=trainer,
    )
    storage = tmp_path / "storage"
    results = run_sweep(load_sweep(path), storage, address=cluster.address)
    assert [r.error for r in results] == [None, None]
    infos = sorted(trials(storage, "optuna"), key=lambda i: i["trial_id"])
    assert [i["status"] for i in infos] == ["finished", "finished"]
    # Optuna's first suggestions for this space with the sweep's seed (trial ids are random,
    # so they do not say which trial asked first: compare the sets)
    study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=3))
    space = {f"overrides/{key}": optuna.distributions.FloatDistribution(1e-4, 1e-2, log=True)}
    expected = sorted(study.ask(space).params[f"overrides/{key}"] for _ in infos)
    got = sorted(i["overrides"][key] for i in infos)
    assert got == pytest.approx(expected) and len(set(got)) == 2
    assert all(1.0e-4 <= value <= 1.0e-2 for value in got)
    for info in infos:
        value = info["overrides"][key]
        run_dir = next((storage / "optuna" / "runs").glob(f"*_{info['trial_id']}"))
        written = yaml.safe_load((run_dir / "trainer_config.yaml").read_text())
        assert written["behaviors"]["Basic"]["hyperparameters"]["learning_rate"] == value
    table, _ = write_report([storage / "optuna"], tmp_path / "report")
    rows = [line for line in table.splitlines() if line.startswith("| optuna: learning_rate=")]
    assert len(rows) == 2 and all("| 3 |" in row for row in rows), table


def test_a_trial_run_by_mla_learn_has_its_environments_on_the_cluster(
    cluster, sweep_file, tmp_path
):
    """learner: mla-learn: the trial's trainer holds its node's one CPU, so its two
    environment workers (half a CPU each) can only run on the other node."""
    path = sweep_file(
        {
            "seeds": [1],
            "num_envs": 2,
            "learner": "mla-learn",
            "learn_args": ["--cpus-per-worker", "0.5"],
            "metric": {"over_last_steps": 1000},
            "resources": {"cpu": 1},
        },
        name="ray-learner",
    )
    storage = tmp_path / "storage"
    run_sweep(load_sweep(path), storage, address=cluster.address)
    [info] = trials(storage, "ray-learner")
    assert info["status"] == "finished", info
    [log] = (storage / "ray-learner" / "runs").glob("*/mlagents-learn.log")
    text = log.read_text()
    assert "-m mla_sweep.learn --mla-learn --address" in text
    workers = re.findall(r"worker \d on [\d.]+ node (\w+)", text)
    assert len(workers) == 2, text[-3000:]
    assert all(not info["node"].startswith(node) for node in workers), (info["node"], workers)
