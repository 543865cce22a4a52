"""Through the real ``mlagents-learn`` and ``mla-env-basic`` processes: which protobuf runs.

A ``sitecustomize`` module on ``PYTHONPATH`` (inherited by the env that mlagents starts)
writes, when each process exits — the trainer, its env worker (a multiprocessing child,
where mlagents' gRPC server parses the env's messages) and the env — what that process's
message modules are: the protobuf
implementation, whether the hook built ``unity_output_pb2`` / ``unity_message_pb2`` and the
metaclass of their message classes. The run also goes through gRPC, side channels,
TensorBoard summaries and the final ONNX export on that protobuf.
"""

from __future__ import annotations

import json
import textwrap

from protobuf_testkit import CURRENT_PROTOBUF

from mla_plugin_core.testing import ppo_basic_smoke_config, run_mlagents_learn

PROBE = textwrap.dedent(
    """
    import atexit, json, os, sys
    import multiprocessing.util

    def _report(role="process"):
        names = ["mlagents_envs.communicator_objects.unity_output_pb2",
                 "mlagents_envs.communicator_objects.unity_message_pb2"]
        modules = [sys.modules[n] for n in names if n in sys.modules]
        if not modules:
            return
        import mla_protobuf
        from google.protobuf.internal import api_implementation
        classes = [m.UnityOutputProto if hasattr(m, "UnityOutputProto") else m.UnityMessageProto
                   for m in modules]
        report = {
            "role": role,
            "argv0": sys.argv[0],
            "implementation": api_implementation.Type(),
            "hooked": [mla_protobuf.is_hooked(m) for m in modules],
            "metaclasses": sorted({type(c).__module__ for c in classes}),
            "class_modules": [[m.__name__, c.__module__] for m, c in zip(modules, classes)],
            "status": mla_protobuf.status(),
        }
        folder = os.environ["MLA_PROTOBUF_PROBE"]
        with open(os.path.join(folder, f"{os.getpid()}.json"), "w") as file:
            json.dump(report, file)

    atexit.register(_report)

    def _in_worker(_):
        # mlagents' env workers are multiprocessing children, which skip atexit handlers
        # but run multiprocessing finalizers when they return.
        multiprocessing.util.Finalize(None, _report, args=("worker",), exitpriority=100)

    multiprocessing.util.register_after_fork(_report, _in_worker)
    """
)


def test_trainer_env_worker_and_env_use_the_hooked_classes(tmp_path, monkeypatch):
    probe_dir, reports = tmp_path / "probe", tmp_path / "reports"
    probe_dir.mkdir()
    reports.mkdir()
    (probe_dir / "sitecustomize.py").write_text(PROBE)
    monkeypatch.setenv("PYTHONPATH", str(probe_dir))
    monkeypatch.setenv("MLA_PROTOBUF_PROBE", str(reports))

    run = run_mlagents_learn(
        ppo_basic_smoke_config(600), env="Basic", results_dir=tmp_path / "results", timeout=300
    )

    assert run.returncode == 0, run.summary()
    assert run.curve("Basic"), "no TensorBoard summary was written"
    assert list(run.results_dir.glob("**/Basic*.onnx")), "no ONNX model was exported"
    by_role = {}
    for path in reports.glob("*.json"):
        report = json.loads(path.read_text())
        if report["argv0"].endswith("mla-env-basic"):
            by_role["env"] = report
        elif report["argv0"].endswith("learn.py"):
            by_role["worker" if report["role"] == "worker" else "trainer"] = report
    assert set(by_role) == {"env", "trainer", "worker"}, [p.read_text() for p in reports.iterdir()]
    for role, report in by_role.items():
        assert report["status"]["installed"], role
        assert all(module == owner for module, owner in report["class_modules"]), (role, report)
        if CURRENT_PROTOBUF:
            assert report["implementation"] == "upb", (role, report)
            assert report["hooked"] and all(report["hooked"]), (role, report)
            assert report["metaclasses"] == ["google._upb._message"], (role, report)
        else:
            assert report["implementation"] == "python", (role, report)
            assert report["hooked"] and not any(report["hooked"]), (role, report)
            assert report["status"]["loaded"] == [], (role, report)
