"""Read and check a sweep file: an ML-Agents trainer YAML plus a ``sweep:`` block.

Example::

    behaviors: {Basic: {trainer_type: dqn, hyperparameters: {learning_rate: 1.0e-3}, max_steps: 10000}}
    sweep:
      env: mla-env-basic            # an executable path or a command on PATH; env_args: [...]
      seeds: [1, 2, 3]
      grid:   {behaviors.Basic.hyperparameters.n_step: [1, 3]}
      search: {behaviors.Basic.hyperparameters.learning_rate: {loguniform: [1.0e-4, 1.0e-2]}}
      samples: 8                    # points drawn from the search space
      metric: {name: Environment/Cumulative Reward, mode: max, over_last_steps: 2000}
      scheduler: asha               # optional early stopping
      resources: {cpu: 2}           # per trial: trainer + environment processes

Every mistake is found before anything starts and reported as one line naming the key
(:class:`SweepConfigError`); each trial's trainer YAML is checked by mlagents' own settings
classes (with the installed trainer plugins), so a value the trainer would refuse is refused
here first.
"""

from __future__ import annotations

import copy
import itertools
import json
import math
import os
import random
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from mla_plugin_core.settings.errors import SettingError

#: Distributions allowed in ``sweep.search`` -> number of arguments they take.
DISTRIBUTIONS = {"uniform": 2, "loguniform": 2, "randint": 2, "quniform": 3, "choice": None}

SCHEDULERS = ("none", "asha")
SEARCH_ALGS = ("random", "optuna")
MODES = ("max", "min")

#: ``sweep:`` keys -> what they hold (used in the error for an unknown key).
SWEEP_KEYS = {
    "env": "executable path or command on PATH",
    "env_args": "list of arguments for the environment",
    "seeds": "list of integer seeds",
    "grid": "dotted key -> list of values",
    "search": "dotted key -> {distribution: [arguments]}",
    "samples": "points drawn from the search space",
    "search_alg": "random or optuna",
    "metric": "{name, mode, over_last_steps, threshold, behavior}",
    "scheduler": "none, asha or {asha: {grace_period, reduction_factor}}",
    "resources": "{cpu}",
    "num_envs": "mlagents-learn --num-envs per trial",
    "max_concurrent": "trials running at once (default: as many as resources allow)",
    "learn_args": "extra mlagents-learn arguments",
    "learner": "mlagents-learn (default) or mla-learn (mla-ray: the trial's environments are "
    "Ray actors on the sweep's cluster)",
}
#: What a trial runs: ``mlagents-learn``, or mla-ray's ``mla-learn`` on the sweep's cluster.
LEARNERS = ("mlagents-learn", "mla-learn")
METRIC_KEYS = ("name", "mode", "over_last_steps", "threshold", "behavior")
ASHA_KEYS = ("grace_period", "reduction_factor")

#: mlagents-learn options that mla-sweep sets per trial itself.
RESERVED_LEARN_ARGS = (
    "--run-id", "--results-dir", "--seed", "--base-port", "--env", "--env-args", "--num-envs",
    "--resume", "--force", "--initialize-from", "--address",
)  # fmt: skip


#: YAML keys that those options set (mlagents' command line wins over the YAML, so a
#: grid or search over them would run the same trial under several names).
RESERVED_KEYS = (
    "env_settings.env_path", "env_settings.env_args", "env_settings.base_port",
    "env_settings.num_envs", "env_settings.seed", "checkpoint_settings.run_id",
    "checkpoint_settings.results_dir", "checkpoint_settings.resume",
    "checkpoint_settings.force", "checkpoint_settings.initialize_from",
)  # fmt: skip


class SweepConfigError(ValueError):
    """A sweep file mistake; ``str()`` is one line naming the key."""


@dataclass(frozen=True)
class Metric:
    """What Tune optimises and the report ranks by.

    :param name: TensorBoard tag mlagents writes (``Environment/Cumulative Reward``).
    :param mode: ``max`` or ``min``.
    :param over_last_steps: the metric at step ``s`` is the mean of the summaries in
        ``(s - over_last_steps, s]``; 0 takes the last summary alone.
    :param threshold: the report's "environment steps to threshold" column (optional).
    :param behavior: the behavior whose metric counts (default: the only one).
    """

    name: str
    mode: str
    over_last_steps: int
    threshold: float | None
    behavior: str


@dataclass(frozen=True)
class Asha:
    """ASHA early stopping over environment steps (`Li et al. 2018 <https://arxiv.org/abs/1810.05934>`_).

    :param grace_period: environment steps every trial runs before it may be stopped
        (default: a tenth of ``max_steps``).
    :param reduction_factor: the top ``1 / reduction_factor`` of trials go on at each rung.
    :param grace_from_file: whether ``grace_period`` was given (else it is the default and
        follows ``--max-steps``).
    """

    grace_period: int
    reduction_factor: float
    grace_from_file: bool = False


@dataclass
class Sweep:
    """A checked sweep file.

    :param name: the sweep's name (file stem): the experiment folder under the storage path.
    :param trainer_config: the YAML without ``sweep:``, as ``mlagents-learn`` reads it.
    :param variants: each configuration as dotted key -> value (grid x search samples);
        ``[{}]`` when there is nothing to vary.
    :param search_space: dotted key -> ``(distribution, arguments)``, kept for Optuna.
    """

    name: str
    path: Path
    trainer_config: dict[str, Any]
    env: str
    env_args: list[str]
    seeds: list[int]
    grid: dict[str, list[Any]]
    search_space: dict[str, tuple[str, list[Any]]]
    samples: int
    search_alg: str
    metric: Metric
    scheduler: Asha | None
    cpu: float
    num_envs: int
    max_concurrent: int | None
    learn_args: list[str]
    max_steps: int
    learner: str = "mlagents-learn"
    variants: list[dict[str, Any]] = field(default_factory=list)

    def trial_config(self, overrides: Mapping[str, Any]) -> dict[str, Any]:
        """The trainer YAML of one trial: ``trainer_config`` with ``overrides`` applied."""
        config = copy.deepcopy(self.trainer_config)
        for key, value in overrides.items():
            set_dotted(config, key, value)
        return config

    def with_max_steps(self, max_steps: int) -> Sweep:
        """The same sweep with every behavior's ``max_steps`` replaced (``--max-steps``)."""
        other = copy.deepcopy(self)
        for behavior in other.trainer_config.get("behaviors", {}).values():
            behavior["max_steps"] = int(max_steps)
        other.max_steps = int(max_steps)
        scheduler = other.scheduler
        if scheduler is not None:
            given = scheduler.grace_from_file
            grace = min(scheduler.grace_period, max_steps) if given else _default_grace(max_steps)
            other.scheduler = Asha(grace, scheduler.reduction_factor, given)
        return other


def _error(where: str, message: str) -> SweepConfigError:
    return SweepConfigError(f"{where}: {message}")


def get_dotted(config: Mapping[str, Any], key: str) -> Any:
    """``config["a"]["b"]`` for ``"a.b"``; :class:`KeyError` naming the missing part."""
    node: Any = config
    for depth, part in enumerate(key.split(".")):
        if not isinstance(node, Mapping) or part not in node:
            raise KeyError(".".join(key.split(".")[: depth + 1]))
        node = node[part]
    return node


def set_dotted(config: dict[str, Any], key: str, value: Any) -> None:
    """Set ``config["a"]["b"] = value`` for ``"a.b"``, creating mappings on the way."""
    parts = key.split(".")
    node = config
    for part in parts[:-1]:
        if not isinstance(node.get(part), dict):
            node[part] = {}
        node = node[part]
    node[parts[-1]] = copy.deepcopy(value)


def _available_keys(config: Mapping[str, Any], key: str) -> str:
    parts = key.split(".")
    for depth in range(len(parts) - 1, -1, -1):
        try:
            node = get_dotted(config, ".".join(parts[:depth])) if depth else config
        except KeyError:
            continue
        if isinstance(node, Mapping):
            prefix = ".".join(parts[:depth])
            return f"{prefix or 'top level'} has: {', '.join(sorted(map(str, node)))}"
    return ""


def _with_defaults(trainer_config: Mapping[str, Any], where: str) -> dict[str, Any]:
    """``trainer_config`` structured by mlagents (plugins registered) and unstructured back."""
    from mlagents.plugins.trainer_type import register_trainer_plugins
    from mlagents.trainers.settings import RunOptions

    register_trainer_plugins()
    try:
        return RunOptions.from_dict(copy.deepcopy(dict(trainer_config))).as_dict()
    except Exception as err:  # mlagents raises TrainerConfigError, cattrs several others
        message = " ".join(str(err).split()) or type(err).__name__
        raise _error(where, f"mlagents refuses this trainer configuration: {message}") from err


def _check_key(
    key: Any, trainer_config: Mapping[str, Any], full: Mapping[str, Any], where: str
) -> str:
    if not isinstance(key, str) or not key or key.startswith(".") or key.endswith("."):
        raise _error(where, f"key {key!r} must be a dotted path such as behaviors.NAME.max_steps")
    if key in RESERVED_KEYS:
        raise _error(where, f"key {key} is set per trial by mla-sweep (seed, ports, folders)")
    for source in (trainer_config, full):
        try:
            get_dotted(source, key)
            return key
        except KeyError:
            pass
    hint = _available_keys(full, key)
    raise _error(where, f"key {key} does not exist in the YAML ({hint})")


def _mapping(value: Any, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise _error(where, f"must be a mapping, got {value!r}")
    return dict(value)


def _int(value: Any, where: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise _error(where, f"{value!r} is not allowed: must be an integer >= {minimum}")
    return value


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise _error(where, f"{value!r} is not allowed: must be a finite number")
    return float(value)


def _strings(value: Any, where: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, (str, int, float)) for v in value):
        raise _error(where, f"{value!r} is not allowed: must be a list of strings")
    return [str(v) for v in value]


def _unknown(block: Mapping[str, Any], allowed: Any, where: str) -> None:
    for key in block:
        if key not in allowed:
            raise _error(f"{where}.{key}", f"unknown key; allowed: {', '.join(allowed)}")


def resolve_env(env: str) -> str:
    """The executable for ``sweep.env``: a path, or a command on ``PATH`` / beside Python."""
    import sys

    beside_python = str(Path(sys.executable).parent)
    found = shutil.which(env, path=beside_python) or shutil.which(env)
    if found is None and os.path.isfile(env) and os.access(env, os.X_OK):
        found = env
    if found is None:
        raise _error("sweep.env", f"{env!r} is neither an executable file nor a command on PATH")
    return str(Path(found).resolve())


def _parse_search(block: Mapping[str, Any], where: str) -> dict[str, tuple[str, list[Any]]]:
    space: dict[str, tuple[str, list[Any]]] = {}
    for key, spec in block.items():
        here = f"{where}: {key}"
        if not isinstance(spec, Mapping) or len(spec) != 1:
            raise _error(
                where, f"{key} must be one {{distribution: [arguments]}}, one of "
                f"{', '.join(DISTRIBUTIONS)}; got {spec!r}",
            )  # fmt: skip
        dist, args = next(iter(spec.items()))
        if dist not in DISTRIBUTIONS:
            raise _error(
                where, f"{key}: unknown distribution {dist!r}; allowed: {', '.join(DISTRIBUTIONS)}"
            )
        if not isinstance(args, list) or not args:
            raise _error(where, f"{key}: {dist} takes a list of arguments, got {args!r}")
        arity = DISTRIBUTIONS[dist]
        if arity is not None:
            if len(args) != arity:
                raise _error(where, f"{key}: {dist} takes {arity} numbers, got {args!r}")
            low, high = (_number(a, here) for a in args[:2])
            if not low < high:
                raise _error(where, f"{key}: {dist} needs low < high, got {args!r}")
            if dist == "loguniform" and low <= 0:
                raise _error(where, f"{key}: loguniform needs low > 0, got {args!r}")
            if dist == "randint" and not all(isinstance(a, int) for a in args):
                raise _error(where, f"{key}: randint takes integers [low, high), got {args!r}")
            if dist == "quniform" and _number(args[2], here) <= 0:
                raise _error(where, f"{key}: quniform's step must be > 0, got {args!r}")
        try:  # Ray's own checks, e.g. quniform's bounds must be multiples of its step
            tune_domain(dist, list(args))
        except (ValueError, TypeError) as err:
            raise _error(where, f"{key}: {dist} {args!r}: {' '.join(str(err).split())}") from None
        space[key] = (dist, list(args))
    return space


def tune_domain(dist: str, args: list[Any]) -> Any:
    """The Ray Tune search domain for one ``sweep.search`` entry."""
    from ray import tune

    if dist == "choice":
        return tune.choice(args)
    return getattr(tune, dist)(*args)


def _edge_values(dist: str, args: list[Any]) -> list[Any]:
    """Values that stand for a whole distribution when mlagents checks them."""
    if dist == "choice":
        return list(args)
    if dist == "randint":
        return [args[0], args[1] - 1]
    return [float(args[0]), float(args[1])]


def draw_variants(
    grid: Mapping[str, list[Any]], space: Mapping[str, tuple[str, list[Any]]], samples: int
) -> list[dict[str, Any]]:
    """Every grid combination x ``samples`` distinct points of the search space (fixed draw).

    The draw is seeded so that ``--resume`` sees the same configurations; each one then
    runs with every seed of the sweep. A point drawn twice (a small ``choice`` space) is
    drawn again, so that no configuration runs twice per seed; a space with fewer than
    ``samples`` points gives the ones found in ``100 * samples`` draws.
    """
    import numpy as np

    combos = [
        dict(zip(grid, values, strict=True)) for values in itertools.product(*grid.values())
    ] or [{}]
    if not space:
        return combos
    rng = np.random.RandomState(random.Random(0).randrange(2**31))
    domains = {key: tune_domain(dist, args) for key, (dist, args) in space.items()}
    points: dict[str, dict[str, Any]] = {}  # distinct points by their JSON, in draw order
    for _ in range(100 * samples):
        point = {}
        for key, domain in domains.items():
            value = domain.sample(random_state=rng)
            point[key] = value.item() if hasattr(value, "item") else value
        points.setdefault(json.dumps(point, sort_keys=True), point)
        if len(points) == samples:
            break
    return [{**combo, **point} for point in points.values() for combo in combos]


def load_sweep(path: str | os.PathLike[str]) -> Sweep:
    """Read and check the sweep file ``path``; :class:`SweepConfigError` on any mistake."""
    path = Path(path)
    try:
        document = yaml.safe_load(path.read_text())
    except OSError as err:
        raise _error(str(path), f"cannot read the sweep file ({err.strerror})") from err
    except yaml.YAMLError as err:
        raise _error(str(path), f"not valid YAML ({' '.join(str(err).split())})") from err
    if not isinstance(document, Mapping) or "sweep" not in document:
        raise _error(str(path), "a sweep file is a trainer YAML with a top-level sweep: block")
    block = _mapping(document["sweep"], "sweep")
    trainer_config = {k: v for k, v in document.items() if k != "sweep"}
    behaviors = trainer_config.get("behaviors")
    if not isinstance(behaviors, Mapping) or not behaviors:
        raise _error("behaviors", "the YAML needs at least one behavior")
    _unknown(block, SWEEP_KEYS, "sweep")
    if "env" not in block or not isinstance(block["env"], str):
        raise _error("sweep.env", "required: an executable path or a command on PATH")
    env = resolve_env(block["env"])
    env_args = _strings(block.get("env_args"), "sweep.env_args")
    seeds_value = block.get("seeds", [0])
    if not isinstance(seeds_value, list) or not seeds_value:
        raise _error("sweep.seeds", f"{seeds_value!r} is not allowed: must be a list of integers")
    seeds = [_int(s, "sweep.seeds", 0) for s in seeds_value]
    if len(set(seeds)) != len(seeds):
        raise _error("sweep.seeds", f"{seeds!r} repeats a seed")

    full = _with_defaults(trainer_config, "behaviors")
    grid: dict[str, list[Any]] = {}
    for key, values in _mapping(block.get("grid"), "sweep.grid").items():
        _check_key(key, trainer_config, full, "sweep.grid")
        if not isinstance(values, list) or not values:
            raise _error(
                "sweep.grid", f"{key}: {values!r} is not allowed: must be a non-empty list"
            )
        grid[key] = values
    search_block = _mapping(block.get("search"), "sweep.search")
    for key in search_block:
        _check_key(key, trainer_config, full, "sweep.search")
        if key in grid:
            raise _error("sweep.search", f"key {key} is also in sweep.grid: vary it in one place")
    space = _parse_search(search_block, "sweep.search")
    samples = _int(block.get("samples", 1), "sweep.samples", 1)
    if "samples" in block and not space:
        raise _error("sweep.samples", "samples draws from sweep.search, which is empty")

    search_alg = block.get("search_alg", "random")
    if search_alg not in SEARCH_ALGS:
        raise _error(
            "sweep.search_alg", f"{search_alg!r} is not allowed: one of {', '.join(SEARCH_ALGS)}"
        )
    if search_alg == "optuna":
        if not space:
            raise _error("sweep.search_alg", "optuna needs a sweep.search space")
        if len(seeds) != 1:
            raise _error("sweep.seeds", "with search_alg: optuna each trial is one seed: give one")
        try:
            import optuna  # noqa: F401
        except ImportError as err:
            raise _error(
                "sweep.search_alg", "optuna is not installed: pip install 'mla-sweep[optuna]'"
            ) from err

    metric_block = _mapping(block.get("metric"), "sweep.metric")
    _unknown(metric_block, METRIC_KEYS, "sweep.metric")
    behavior = metric_block.get("behavior")
    if behavior is None:
        if len(behaviors) != 1:
            raise _error(
                "sweep.metric.behavior",
                f"required with several behaviors: one of {', '.join(behaviors)}",
            )
        behavior = next(iter(behaviors))
    elif behavior not in behaviors:
        raise _error(
            "sweep.metric.behavior",
            f"{behavior!r} is not a behavior of the YAML: {', '.join(behaviors)}",
        )
    mode = metric_block.get("mode", "max")
    if mode not in MODES:
        raise _error("sweep.metric.mode", f"{mode!r} is not allowed: max or min")
    name = metric_block.get("name", "Environment/Cumulative Reward")
    if not isinstance(name, str) or not name:
        raise _error("sweep.metric.name", f"{name!r} is not allowed: a TensorBoard tag")
    threshold = metric_block.get("threshold")
    metric = Metric(
        name=name,
        mode=mode,
        over_last_steps=_int(
            metric_block.get("over_last_steps", 0), "sweep.metric.over_last_steps", 0
        ),
        threshold=None if threshold is None else _number(threshold, "sweep.metric.threshold"),
        behavior=str(behavior),
    )

    resources = _mapping(block.get("resources"), "sweep.resources")
    _unknown(resources, ("cpu",), "sweep.resources")
    cpu = _number(resources.get("cpu", 1), "sweep.resources.cpu")
    if cpu <= 0:
        raise _error("sweep.resources.cpu", f"{cpu!r} is not allowed: must be > 0")
    num_envs = _int(block.get("num_envs", 1), "sweep.num_envs", 1)
    max_concurrent = block.get("max_concurrent")
    if max_concurrent is not None:
        max_concurrent = _int(max_concurrent, "sweep.max_concurrent", 1)
    learn_args = _strings(block.get("learn_args"), "sweep.learn_args")
    for arg in learn_args:
        if arg.split("=")[0] in RESERVED_LEARN_ARGS:
            raise _error("sweep.learn_args", f"{arg} is set per trial by mla-sweep; remove it")

    learner = block.get("learner", "mlagents-learn")
    if learner not in LEARNERS:
        raise _error(
            "sweep.learner", f"{learner!r} is not allowed: must be one of {', '.join(LEARNERS)}"
        )

    sweep = Sweep(
        name=path.stem, path=path.resolve(), trainer_config=trainer_config, env=env,
        env_args=env_args, seeds=seeds, grid=grid, search_space=space, samples=samples,
        search_alg=search_alg, metric=metric, scheduler=None, cpu=cpu, num_envs=num_envs,
        max_concurrent=max_concurrent, learn_args=learn_args, max_steps=0, learner=learner,
    )  # fmt: skip
    _check_values(sweep)  # before the values are used: max_steps of the variants
    sweep.variants = draw_variants(grid, space, samples) if search_alg == "random" else [{}]
    sweep.max_steps = _largest_max_steps(full, sweep.variants, grid, space)
    sweep.scheduler = _parse_scheduler(block.get("scheduler", "none"), sweep.max_steps)
    return sweep


def _largest_max_steps(
    full: Mapping[str, Any],
    variants: list[dict[str, Any]],
    grid: Mapping[str, list[Any]],
    space: Mapping[str, Any],
) -> int:
    """The largest ``max_steps`` any trial can get (ASHA's ``max_t``): over the behaviors
    of every variant, and the largest grid value and upper end of a searched ``max_steps``
    (with Optuna the variants are not drawn beforehand)."""
    largest = 0
    for name, behavior in full["behaviors"].items():
        key = f"behaviors.{name}.max_steps"
        values = [v.get(key, behavior.get("max_steps", 500000)) for v in variants]
        values += grid.get(key, []) + (_edge_values(*space[key]) if key in space else [])
        largest = max(largest, *map(int, values))
    return largest


def _default_grace(max_steps: int) -> int:
    """ASHA's default grace period: a tenth of ``max_steps``."""
    return max(1, max_steps // 10)


def _parse_scheduler(value: Any, max_steps: int) -> Asha | None:
    where = "sweep.scheduler"
    if value in (None, "none"):
        return None
    options: Mapping[str, Any] = {}
    if isinstance(value, Mapping) and list(value) == ["asha"]:
        options = _mapping(value["asha"], f"{where}.asha")
        _unknown(options, ASHA_KEYS, f"{where}.asha")
    elif value != "asha":
        raise _error(
            where, f"{value!r} is not allowed: one of {', '.join(SCHEDULERS)} or {{asha: {{...}}}}"
        )
    given = "grace_period" in options
    grace = _int(
        options.get("grace_period", _default_grace(max_steps)), f"{where}.asha.grace_period", 1
    )
    if grace > max_steps:
        raise _error(
            f"{where}.asha.grace_period",
            f"{grace} is not allowed: must be <= max_steps ({max_steps})",
        )
    factor = _number(options.get("reduction_factor", 2), f"{where}.asha.reduction_factor")
    if factor <= 1:
        raise _error(f"{where}.asha.reduction_factor", f"{factor!r} is not allowed: must be > 1")
    return Asha(grace, factor, given)


def _check_values(sweep: Sweep) -> None:
    """Let mlagents structure every value a trial could get; refuse one it would refuse."""
    for source, entries in (
        ("sweep.grid", {k: v for k, v in sweep.grid.items()}),
        ("sweep.search", {k: _edge_values(*s) for k, s in sweep.search_space.items()}),
    ):
        for key, values in entries.items():
            for value in values:
                config = sweep.trial_config({key: value})
                try:
                    _with_defaults(config, source)
                except SweepConfigError as err:
                    # A setting's own error says what is allowed (its key and value are
                    # already in this line); anything else is quoted whole.
                    cause = err.__cause__
                    reason = (
                        cause.allowed
                        if isinstance(cause, SettingError)
                        else str(err).split("trainer configuration: ", 1)[-1]
                    )
                    raise _error(source, f"{key} = {value!r} is not allowed: {reason}") from None
