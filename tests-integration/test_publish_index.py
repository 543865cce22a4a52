"""Publishing for real: a pypiserver on 127.0.0.1 (uploads need a password), the four
distributions published to it by ``tools/publish.py`` (what ``nox -s publish`` runs), then
README's Install > From a package index, as written, installs mla-dqn and mla-envs from that
server (mlagents and the rest from the default index) and the venv trains Basic."""

import importlib.util
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from conftest import ROOT, Venv
from install_kit import assert_user_install, install_block, run_block, user_environment

from mla_plugin_core.testing.learn import free_base_port

PUBLISHED = ("mla-protobuf", "mla-plugin-core", "mla-dqn", "mla-envs")
#: The tools of the noxfile's publish session, and the index server.
TOOLS = ("hatch==1.18.2", "twine==7.0.0", "pypiserver[passlib]==2.4.2")
USER, PASSWORD = "releaser", "s3cret-for-this-test"
PUBLISH_SCRIPT = ROOT / "tools" / "publish.py"
PACKAGES = sorted(path.parent.name for path in ROOT.glob("packages/*/pyproject.toml"))


@pytest.fixture(scope="module")
def tools(tmp_path_factory) -> Venv:
    path = tmp_path_factory.mktemp("publish-tools")
    subprocess.run(["uv", "venv", "-q", "-p", sys.executable, str(path)], check=True)
    subprocess.run(
        ["uv", "pip", "install", "-q", "--python", str(path / "bin" / "python"), *TOOLS],
        check=True,
    )
    return Venv(path)


@pytest.fixture(scope="module")
def index(tools, tmp_path_factory):
    """A running pypiserver: (its URL, the file of its request log). Downloads are anonymous,
    uploads need USER/PASSWORD; no fallback to another index for names it does not have."""
    folder = tmp_path_factory.mktemp("index")
    (folder / "packages").mkdir()
    htpasswd = folder / "htpasswd"
    made = tools.python(
        "from passlib.apache import HtpasswdFile\n"
        f"f = HtpasswdFile({str(htpasswd)!r}, new=True)\n"
        f"f.set_password({USER!r}, {PASSWORD!r}); f.save()\n"
    )
    assert made.returncode == 0, made.stderr
    port = free_base_port()
    log = folder / "server.log"
    with open(log, "w") as out:
        server = subprocess.Popen(
            [
                str(tools.bin / "pypi-server"), "run", "-v", "-i", "127.0.0.1", "-p", str(port),
                "-a", "update", "-P", str(htpasswd), "--disable-fallback",
                str(folder / "packages"),
            ],
            stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}/"
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(url + "health", timeout=2).close()
                break
            except OSError:
                assert server.poll() is None, log.read_text()
                time.sleep(0.2)
        yield url, log
    finally:
        server.terminate()
        server.wait(timeout=30)


def publish(bin_dir: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    """``tools/publish.py *args`` with the Python of ``bin_dir``, no TWINE_* variables but
    ``env``."""
    clean = {name: value for name, value in os.environ.items() if not name.startswith("TWINE_")}
    # One hatch data folder for all builds: hatch makes its build environment once.
    clean["HATCH_DATA_DIR"] = str(bin_dir.parent / "hatch-data")
    return subprocess.run(
        [str(bin_dir / "python"), str(PUBLISH_SCRIPT), *args],
        capture_output=True, text=True, timeout=300, env={**clean, **env},
    )  # fmt: skip


def version(distribution: str) -> str:
    """The version ``tools/publish.py`` reads for ``distribution``."""
    spec = importlib.util.spec_from_file_location("publish_tool", PUBLISH_SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.version(distribution)


@pytest.mark.parametrize(
    "args, env, message",
    [
        (["mla-dqn"], {}, "no index given: pass --repository-url URL (or set "
         "TWINE_REPOSITORY_URL), or --pypi to upload to the public index"),
        (["mla-dqn", "--pypi"], {"TWINE_REPOSITORY_URL": "http://127.0.0.1:1/"},
         "--pypi and an index URL (TWINE_REPOSITORY_URL) given: choose one"),
        (["mla-dq", "--repository-url", "http://127.0.0.1:1/"], {},
         f"unknown distribution 'mla-dq': one of {', '.join(PACKAGES)}"),
    ],
)  # fmt: skip
def test_publish_refuses_bad_input_in_one_line(args, env, message):
    """Checked before anything is built; this Python has neither hatch nor twine."""
    refused = publish(Path(sys.executable).parent, *args, **env)
    assert (refused.returncode, refused.stderr.splitlines()) == (2, [f"publish: error: {message}"])


@pytest.mark.latest_only
def test_publish_to_a_local_index_then_install_from_it(tools, index, tmp_path):
    url, log = index
    wrong = publish(tools.bin, "mla-protobuf", "--repository-url", url,
                    TWINE_USERNAME=USER, TWINE_PASSWORD="wrong")  # fmt: skip
    assert wrong.returncode == 1 and "403" in wrong.stdout + wrong.stderr, wrong.stderr
    for distribution in PUBLISHED:
        done = publish(tools.bin, distribution, "--repository-url", url,
                       TWINE_USERNAME=USER, TWINE_PASSWORD=PASSWORD)  # fmt: skip
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        assert done.stdout.strip().endswith(
            f"published {distribution} {version(distribution)} to {url}"
        )
    listing = urllib.request.urlopen(url + "simple/").read().decode()
    assert all(f'href="{name}/"' in listing for name in PUBLISHED), listing

    user = tmp_path / "user"
    user.mkdir()
    env = user_environment(MLA_INDEX=url + "simple/")
    run_block(install_block("From a package index (Python 3.11)"), cwd=user, env=env)
    served = log.read_text()
    for name in PUBLISHED:  # ours came from this server, as wheels
        wheel = (
            f'GET /packages/{name.replace("-", "_")}-{version(name)}-py3-none-any.whl HTTP/1.1" 200'
        )
        assert wheel in served, served[-3000:]
    assert_user_install(Venv(user / ".venv"), tmp_path)
