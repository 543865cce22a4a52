"""Test, lint, type-check and build every package of mla-plugins.

Each package is tested against a matrix of mlagents releases (the ones with the
``mlagents.trainer_type`` plugin API): the oldest and the newest, and the trainer packages
the one between. On Python 3.11, which mlagents does not declare, the releases are installed
with the corrected dependency metadata in ``uv.toml``.

    nox                      # everything (the CI command)
    nox -t latest            # quick loop: every package against the newest mlagents
    nox -s "tests(mla-dqn-mla1.1)"   # one cell of the matrix
    nox -s slow              # the longest cluster tests (not in plain ``nox``)
    nox -l                   # list sessions

Every folder ``packages/<name>/`` with a ``pyproject.toml`` is a package of the matrix.
"""

from __future__ import annotations

import glob
import os
import re
from pathlib import Path

import nox
import tomllib

ROOT = Path(__file__).parent
PACKAGES = sorted(path.parent.name for path in ROOT.glob("packages/*/pyproject.toml"))
# Installed as a wheel built from the tree, never editable, in every session: mla-protobuf's
# .pth file (the import hook that lets mlagents load its messages on current protobuf) must
# be there exactly as users get it; mla-plugin-core's suite runs on what its wheel holds
# (package data: the shipped configs, the scaffold's templates, the testing kit).
NOT_EDITABLE = {"mla-protobuf", "mla-plugin-core"}
# Optional extras a package's own tests need (installed in its matrix sessions).
TEST_EXTRAS = {"mla-sweep": "optuna"}
# The matrix runs on current protobuf (compiled upb, through mla-protobuf's hook); the
# ``protobuf_legacy`` session checks that the hook stays out of the way of protobuf < 4.
PROTOBUF_CURRENT = "protobuf>=5"
PROTOBUF_LEGACY = "protobuf<3.21"
# Legend: oldest = lowest supported release, latest = newest supported release.
MLAGENTS_RELEASES = {"0.30.0": "oldest", "1.0.0": "middle", "1.1.0": "latest"}
# Tested against the middle release too: the trainers, whose code extends mlagents' trainer
# API. The other packages (the Unity side, the protobuf hook, Ray runs, sweeps) and the
# integration sessions run against the oldest and the newest release, which bound what they
# use; so CI keeps within its hour on 2 cores.
MIDDLE_RELEASE_PACKAGES = {"mla-plugin-core", "mla-dqn", "mla-a2c"}
# The longest cluster tests (pytest mark ``slow_cluster``) run in ``nox -s slow`` only.
SLOW_PACKAGES = ["mla-ray", "mla-sweep"]
UV_CONFIG = ROOT / "uv.toml"

nox.options.default_venv_backend = "uv"
nox.options.error_on_missing_interpreters = True
nox.options.reuse_existing_virtualenvs = False


def torch_pin() -> list[str]:
    """Pin torch to the CPU wheel in ``TORCH_CPU_WHEELS`` (README's name for the folder), else
    in ``PIP_FIND_LINKS``, when that folder has one.

    uv does not read ``PIP_FIND_LINKS`` by itself; without an exact pin it would take a
    multi-GB CUDA build from the index. With no such folder, torch resolves normally.
    """
    folder = os.environ.get("TORCH_CPU_WHEELS") or os.environ.get("PIP_FIND_LINKS", "")
    wheels = sorted(glob.glob(os.path.join(folder, "torch-*.whl"))) if folder else []
    if not wheels:
        return []
    version = Path(wheels[-1]).name.split("-")[1]
    return ["--find-links", folder, f"torch=={version}"]


def local_package(requirement: str) -> str | None:
    """The name of this repo's package that ``requirement`` names, if it names one."""
    bare = re.split(r"[<>=!~\[ ;]", requirement, maxsplit=1)[0]
    return bare if (ROOT / "packages" / bare).is_dir() else None


def local_install(package: str, extra: str | None = None) -> list[str]:
    """Install arguments for one of this repo's packages (with its optional ``extra``):
    editable, except ``NOT_EDITABLE`` ones (built from the tree; ``--refresh-package``
    because uv would otherwise reuse the wheel it built before unless pyproject.toml changed)."""
    path = ROOT / "packages" / package
    if package in NOT_EDITABLE:
        return ["--refresh-package", package, str(path)]
    return [f"-e{path}" + (f"[{extra}]" if extra else "")]


def local_dependencies(package: str) -> list[str]:
    """This repo's packages that ``package`` needs, directly or not (dependencies and its
    ``test`` group), so that none of them is looked up on an index."""
    pending, found = [package], []
    while pending:
        pyproject = tomllib.loads(
            (ROOT / "packages" / pending.pop() / "pyproject.toml").read_text()
        )
        requirements = pyproject["project"].get("dependencies", [])
        if not found:  # the test group of the package under test only
            requirements = [*requirements, *pyproject.get("dependency-groups", {}).get("test", [])]
        for requirement in requirements:
            local = local_package(requirement)
            if local and local != package and local not in found:
                found.append(local)
                pending.append(local)
    return found


def install_with_mlagents(session: nox.Session, mlagents: str, *requirements: str) -> None:
    """Install ``mlagents==<mlagents>`` with corrected metadata, CPU torch and ``requirements``."""
    session.install(
        "--config-file",
        str(UV_CONFIG),
        f"mlagents=={mlagents}",
        f"mlagents-envs=={mlagents}",
        *torch_pin(),
        *requirements,
    )


def package_requirements(package: str) -> list[str]:
    """The package itself plus its ``test`` dependency group; this repo's packages (the
    package's own and its siblings, also indirect ones) from the tree, see ``local_install``."""
    pyproject = tomllib.loads((ROOT / "packages" / package / "pyproject.toml").read_text())
    group = pyproject.get("dependency-groups", {}).get("test", [])
    reqs = local_install(package, TEST_EXTRAS.get(package))
    reqs += [requirement for requirement in group if not local_package(requirement)]
    for sibling in local_dependencies(package):
        reqs += local_install(sibling)
    return reqs


MATRIX = [
    nox.param(package, release, id=f"{package}-mla{release.rsplit('.', 1)[0]}", tags=[tag])
    for package in PACKAGES
    for release, tag in MLAGENTS_RELEASES.items()
    if tag != "middle" or package in MIDDLE_RELEASE_PACKAGES
]


@nox.session(python="3.11")
@nox.parametrize(["package", "mlagents"], MATRIX)
def tests(session: nox.Session, package: str, mlagents: str) -> None:
    """Run one package's tests against one mlagents release."""
    install_with_mlagents(session, mlagents, *package_requirements(package), PROTOBUF_CURRENT)
    run_package_tests(session, package)


def run_package_tests(
    session: nox.Session, package: str, *pytest_args: str, marks: str = "not slow_cluster"
) -> None:
    """Print the versions under test, then run ``package``'s tests selected by ``marks``."""
    session.run(
        "python",
        "-c",
        "import mlagents.trainers, importlib.metadata as m; "
        "from google.protobuf.internal import api_implementation as p; "
        "print('mlagents', m.version('mlagents'), 'torch', m.version('torch'), "
        "'protobuf', m.version('protobuf'), p.Type())",
    )
    session.run(
        "pytest",
        str(ROOT / "packages" / package / "tests"),
        "-p",
        "no:cacheprovider",
        "-q",
        "--durations=8",  # where CI's time goes, in every log
        "-m",
        marks,
        *pytest_args,
        *session.posargs,
        env={"PYTHONWARNINGS": "ignore::UserWarning:mlagents.torch_utils.torch"},
    )


@nox.session(python="3.11", default=False)
def slow(session: nox.Session) -> None:
    """The longest cluster tests, newest mlagents (not run by plain ``nox``): a sweep whose
    driver is killed resumes; an mla-learn run loses a node of its cluster."""
    requirements = [req for package in SLOW_PACKAGES for req in package_requirements(package)]
    install_with_mlagents(session, "1.1.0", *dict.fromkeys(requirements), PROTOBUF_CURRENT)
    for package in SLOW_PACKAGES:
        run_package_tests(session, package, marks="slow_cluster")


@nox.session(python="3.11", tags=["latest"])
def protobuf_legacy(session: nox.Session) -> None:
    """mla-protobuf's tests (one short mlagents-learn run among them) on protobuf < 4,
    newest mlagents: the hook must stay out of the way of the pure-Python protobuf."""
    install_with_mlagents(session, "1.1.0", *package_requirements("mla-protobuf"), PROTOBUF_LEGACY)
    run_package_tests(session, "mla-protobuf")


@nox.session(python="3.11", tags=["latest", "static"])
def lint(session: nox.Session) -> None:
    """ruff: lint and formatting check over the whole tree."""
    session.install("ruff==0.17.5")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session(python="3.11", tags=["latest", "static"])
def typecheck(session: nox.Session) -> None:
    """mypy on mla-plugin-core (the public API plugin authors build on), mla-protobuf,
    mla-ray and mla-sweep."""
    install_with_mlagents(
        session,
        "1.1.0",
        *local_install("mla-plugin-core"),
        *local_install("mla-protobuf"),
        *local_install("mla-ray"),
        *local_install("mla-sweep", "optuna"),
        "mypy==2.4.1",
        "types-PyYAML",
        "pytest",
    )
    session.run(
        "mypy",
        "--config-file",
        str(ROOT / "mypy.ini"),
        str(ROOT / "packages" / "mla-plugin-core" / "src"),
        str(ROOT / "packages" / "mla-protobuf" / "src"),
        str(ROOT / "packages" / "mla-ray" / "src"),
        str(ROOT / "packages" / "mla-sweep" / "src"),
    )


def build_distributions(session: nox.Session, dist: Path, targets: tuple[str, ...]) -> None:
    """Build ``targets`` (``wheel``, ``sdist``) of every package into ``dist`` with hatch."""
    session.install("hatch==1.18.2")
    # Keep hatch's build environments inside this session, not in the user's data folder.
    session.env["HATCH_DATA_DIR"] = str(Path(session.create_tmp()).resolve() / "hatch")
    dist.mkdir(parents=True, exist_ok=True)
    target_args = [arg for target in targets for arg in ("-t", target)]
    for package in PACKAGES:
        for old in dist.glob(package.replace("-", "_") + "-*"):
            old.unlink()
        session.chdir(ROOT / "packages" / package)
        # nox's uv backend exports UV_PYTHON (the session's interpreter); hatch installs its
        # build environment with uv, which would then install hatchling in the wrong place.
        session.run(
            "env", "-u", "UV_PYTHON", "hatch", "build", *target_args, str(dist), external=True
        )
    session.chdir(ROOT)


@nox.session(python="3.11", tags=["latest", "static"])
def build(session: nox.Session) -> None:
    """Build a wheel and an sdist per package into dist/ and check their metadata."""
    dist = ROOT / "dist"
    build_distributions(session, dist, ("wheel", "sdist"))
    session.install("twine==7.0.0")
    session.run("twine", "check", "--strict", *map(str, sorted(dist.iterdir())))


@nox.session(python="3.11", default=False)
def publish(session: nox.Session) -> None:
    """Build, check and upload one distribution: ``-- mla-dqn --repository-url URL``.

    Not run by plain ``nox``. ``--pypi`` in place of the URL for the public index; credentials
    from the environment (``TWINE_USERNAME``/``TWINE_PASSWORD``). The work is
    ``tools/publish.py``'s, which the local-index integration test runs too.
    """
    session.install("hatch==1.18.2", "twine==7.0.0")
    session.run("python", str(ROOT / "tools" / "publish.py"), *session.posargs)


@nox.session(python="3.11")
@nox.parametrize(
    "mlagents",
    [
        nox.param(release, id=f"mla{release.rsplit('.', 1)[0]}", tags=[tag])
        for release, tag in MLAGENTS_RELEASES.items()
        if tag != "middle"
    ],
)
def integration(session: nox.Session, mlagents: str) -> None:
    """End to end: wheels in fresh venvs, README commands verbatim, config errors, scaffold."""
    wheels = Path(session.create_tmp()).resolve() / "wheels"
    build_distributions(session, wheels, ("wheel",))
    # Our wheels keep version 0.1.0 between changes: without a refresh uv would install the
    # copy it cached from an earlier build instead of the wheels just built.
    refresh = [arg for name in PACKAGES for arg in ("--refresh-package", name)]
    install_with_mlagents(
        session,
        mlagents,
        "--find-links",
        str(wheels),
        *refresh,
        "mla-plugin-core",
        "mla-envs",
        "pytest>=7",
    )
    # Release-independent slow checks (scaffolded packages, README's demo) run once.
    selection = [] if MLAGENTS_RELEASES[mlagents] == "latest" else ["-m", "not latest_only"]
    session.run(
        "pytest", str(ROOT / "tests-integration"), "-p", "no:cacheprovider", "-q", "--durations=12",
        *selection,
        *session.posargs,
        env={"MLA_WHEELS": str(wheels), "MLA_MLAGENTS": mlagents},
    )  # fmt: skip


@nox.session(python="3.11", default=False)
def bench(session: nox.Session) -> None:
    """Benchmark suite on mla-sweep (not run by plain ``nox``): ``nox -s bench [-- --quick]``.

    DQN vs SAC on Basic, A2C vs PPO on 3DBall, DQN and A2C on CartPole-v1 (with SB3 as a
    reference), 3 seeds each; writes benchmarks/results/ and docs/benchmarks.md.
    """
    packages = ["mla-dqn", "mla-a2c", "mla-sweep"]
    packages += [p for name in packages for p in local_dependencies(name) if p not in packages]
    install_with_mlagents(
        session,
        "1.1.0",
        *[arg for name in dict.fromkeys(packages) for arg in local_install(name)],
        PROTOBUF_CURRENT,
        # benchmark-only: the reference on the Gymnasium tasks
        "stable-baselines3",
    )
    session.run("python", str(ROOT / "benchmarks" / "bench.py"), *session.posargs)
