"""Build one distribution of this repository, check its metadata and upload it to an index.

    python tools/publish.py DIST --repository-url URL    # e.g. http://127.0.0.1:8080/
    python tools/publish.py DIST --pypi                   # the public index: only when asked

``DIST`` is a folder name under ``packages/`` (``mla-dqn``). The wheel and the sdist are
built with hatch into a fresh folder, checked with ``twine check --strict`` and uploaded
with ``twine upload``. Credentials come from the environment as twine reads them
(``TWINE_USERNAME`` / ``TWINE_PASSWORD``); ``TWINE_REPOSITORY_URL`` may name the index in
place of ``--repository-url``. hatch and twine must be installed beside the Python that
runs this script (``nox -s publish`` does that). Bad input ends with one line, exit 2.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = sorted(path.parent.name for path in ROOT.glob("packages/*/pyproject.toml"))
#: twine's name for the public index (a section of its configuration, built in).
PUBLIC_INDEX = "pypi"


class UsageError(Exception):
    """A bad command line: its message is the one line the user sees."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="publish", description=__doc__.split("\n\n")[0])
    parser.add_argument("distribution", metavar="DIST", help=f"one of {', '.join(PACKAGES)}")
    where = parser.add_mutually_exclusive_group()
    where.add_argument(
        "--repository-url", metavar="URL", help="upload URL of the index (or TWINE_REPOSITORY_URL)"
    )
    where.add_argument("--pypi", action="store_true", help="upload to the public index")
    return parser


def parse_args(argv: Sequence[str], environ: dict[str, str]) -> tuple[str, str | None]:
    """The distribution and the index URL (``None``: the public index), or ``UsageError``."""
    args = _parser().parse_args(argv)
    if args.distribution not in PACKAGES:
        raise UsageError(
            f"unknown distribution {args.distribution!r}: one of {', '.join(PACKAGES)}"
        )
    url = args.repository_url or environ.get("TWINE_REPOSITORY_URL") or None
    if args.pypi and url:
        raise UsageError("--pypi and an index URL (TWINE_REPOSITORY_URL) given: choose one")
    if not args.pypi and not url:
        raise UsageError(
            "no index given: pass --repository-url URL (or set TWINE_REPOSITORY_URL), "
            "or --pypi to upload to the public index"
        )
    return args.distribution, url


def version(distribution: str) -> str:
    """The version in ``packages/<distribution>/src/<import name>/version.py``."""
    module = distribution.replace("-", "_")
    text = (ROOT / "packages" / distribution / "src" / module / "version.py").read_text()
    match = re.search(r"""__version__\s*=\s*["']([^"']+)["']""", text)
    if match is None:
        raise RuntimeError(f"no __version__ in {distribution}'s version.py")
    return match.group(1)


def build(distribution: str, out: Path) -> list[Path]:
    """Build ``distribution``'s wheel and sdist into ``out`` with hatch; the files built."""
    env = dict(os.environ)
    # hatch installs its build environment with uv, which would follow an inherited
    # UV_PYTHON (nox exports it) and put hatchling in the wrong interpreter.
    env.pop("UV_PYTHON", None)
    # hatch's build environments stay in the build folder (or the one HATCH_DATA_DIR names),
    # not in the user's data folder.
    env.setdefault("HATCH_DATA_DIR", str(out / ".hatch"))
    subprocess.run(
        [sys.executable, "-m", "hatch", "build", "-t", "wheel", "-t", "sdist", str(out)],
        cwd=ROOT / "packages" / distribution,
        env=env,
        check=True,
    )
    files = sorted(out.glob(f"{distribution.replace('-', '_')}-{version(distribution)}*"))
    if {".whl", ".gz"} - {f.suffix for f in files}:
        raise RuntimeError(f"hatch did not build a wheel and an sdist of {distribution} in {out}")
    return files


def upload(files: Sequence[Path], url: str | None) -> None:
    """``twine check --strict`` then ``twine upload`` to ``url`` (``None``: the public index).

    ``--non-interactive``: missing credentials are an error, never a prompt.
    """
    names = [str(f) for f in files]
    subprocess.run([sys.executable, "-m", "twine", "check", "--strict", *names], check=True)
    target = ["--repository-url", url] if url else ["--repository", PUBLIC_INDEX]
    subprocess.run(
        [sys.executable, "-m", "twine", "upload", "--non-interactive", *target, *names],
        check=True,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Build, check and upload one distribution; 0 on success, 2 on bad input, 1 otherwise."""
    try:
        distribution, url = parse_args(sys.argv[1:] if argv is None else argv, dict(os.environ))
    except UsageError as error:
        print(f"publish: error: {error}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="mla-publish-") as folder:
        try:
            files = build(distribution, Path(folder))
            upload(files, url)
        except subprocess.CalledProcessError as error:
            print(f"publish: {distribution}: `{' '.join(error.cmd[2:4])}` failed", file=sys.stderr)
            return 1
    print(f"published {distribution} {version(distribution)} to {url or PUBLIC_INDEX}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
