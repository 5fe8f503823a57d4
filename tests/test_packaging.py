"""The project's own promises: README commands and docs pages, CI script, Dockerfile, installed apps."""

import json
import os
import re
import shlex
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from packaging.requirements import InvalidRequirement, Requirement
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]


def _readme_commands():
    text = (ROOT / "README.md").read_text()
    head = text.split("\n## ", 1)[0]
    return re.findall(r"```bash\n(.+?)\n```", head, flags=re.S)


def test_readme_starts_with_exactly_two_commands():
    commands = _readme_commands()
    assert len(commands) == 2 and all("\n" not in c for c in commands)
    assert commands[0].startswith("bash scripts/setup.sh") and "keras-clust" in commands[0]
    assert "--test" in commands[1] and "pytest" in commands[1]


def test_ci_runs_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert _readme_commands()[1] in ci
    commands = [line for line in ci if line.strip() and not line.lstrip().startswith("#")]
    assert commands[0] == "set -euo pipefail" or "set -euo pipefail" in commands
    # last, so that its exit status (a failed setup.sh, or pytest's 5 for "no tests") is CI's
    assert commands[-1] == _readme_commands()[1]
    assert ".venv/bin/ruff check ." in commands and "ruff" in (ROOT / "setup.cfg").read_text().split("test =")[1]


def test_runtime_dependencies_declared():
    setup = (ROOT / "setup.cfg").read_text()
    for dep in (
        "tensorflow",
        "keras-tuner",
        "tensorboard",
        "optuna",
        "optuna-integration",
        "scikit-learn",
        "scipy",
        "opencv-python-headless",
        "numpy",
        "matplotlib",
        "mlxtend",
    ):
        assert re.search(rf"^\s+{re.escape(dep)}\b", setup, flags=re.M), dep
    assert "[build-system]" in (ROOT / "pyproject.toml").read_text()


def test_wheel_contains_apps_and_entry_point(tmp_path):
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(ROOT)], check=True
    )
    (wheel,) = tmp_path.glob("keras_clust-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "keras_clust/apps/mnist_l1.py" in names and "keras_clust/cli.py" in names
    assert "keras_clust/apps/fashion_cae/tune.py" in names and "keras_clust/tuning/space.py" in names
    assert "keras_clust/lj/monte_carlo.py" in names and "keras_clust/fields/autoencoder.py" in names
    assert not [n for n in names if n.startswith("apps/")], "the apps install as keras_clust.apps only"
    entry = next(n for n in names if n.endswith("entry_points.txt"))
    assert "keras-clust = keras_clust.cli:main" in zipfile.ZipFile(wheel).read(entry).decode()


#: Commands that are tools rather than experiments: documented, though not in the table.
TOOLS = ("data", "serve")


def test_every_package_folder_is_installed():
    """setup.cfg lists its packages (the apps/ folder is mapped to keras_clust.apps): a new
    folder with an __init__.py that is not listed would be left out of the wheel."""
    listed = re.search(r"^packages =\n((?:\s+\S+\n)+)", (ROOT / "setup.cfg").read_text(), flags=re.M)
    packages = set(listed.group(1).split())
    found = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "keras_clust").rglob("__init__.py")}
    found |= {
        ".".join(("keras_clust", *p.parent.relative_to(ROOT).parts)) for p in (ROOT / "apps").rglob("__init__.py")
    }
    assert packages == found


def test_readme_lists_every_experiment():
    from keras_clust.cli import EXPERIMENTS

    readme = (ROOT / "README.md").read_text()
    table = readme.split("## Experiments", 1)[1].split("\n\n", 2)[1]
    for name in EXPERIMENTS:
        if name not in TOOLS:
            assert f"`keras-clust {name} " in table, name
        else:  # a tool such as 'keras-clust data': documented, though not in the table
            assert f"keras-clust {name} " in readme, name


def _doc_links(text: str) -> list[str]:
    """Relative Markdown link targets ending in ``.md`` (an ``#anchor`` dropped)."""
    return re.findall(r"\]\(([^)#\s:]+\.md)(?:#[^)\s]*)?\)", text)


def test_docs_pages_linked_from_readme_exist_and_every_experiment_has_one():
    from keras_clust.cli import EXPERIMENTS

    linked = [link for link in _doc_links((ROOT / "README.md").read_text()) if link.startswith("docs/")]
    assert "docs/index.md" in linked
    missing = [link for link in linked if not (ROOT / link).is_file()]
    assert not missing, f"README links missing pages: {missing}"
    for name in EXPERIMENTS:  # experiments and tools alike: one page each, linked, showing its command
        page = ROOT / "docs" / f"{name}.md"
        assert page.is_file() and f"docs/{name}.md" in linked, name
        assert f"keras-clust {name} " in page.read_text(), name


def test_docs_links_resolve_and_index_lists_every_page():
    pages = sorted((ROOT / "docs").glob("*.md"))
    broken = [
        f"{page.name} -> {link}"
        for page in pages
        for link in _doc_links(page.read_text())
        if not (page.parent / link).resolve().is_file()
    ]
    assert not broken, broken
    indexed = set(_doc_links((ROOT / "docs" / "index.md").read_text()))
    assert {page.name for page in pages} - {"index.md"} <= indexed


# --- Dockerfile and .dockerignore, parsed --------------------------------------------------
# No Docker engine runs where the tests do, so the Dockerfile is parsed the way Docker
# reads it and each promise is checked on the parsed instructions. Every check is also run
# on a broken copy of the real Dockerfile (test_docker_checks_catch_broken_copies), so a
# check that cannot fail is caught too.

DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"


def parse_dockerfile(text: str) -> list[tuple[str, str]]:
    """``(INSTRUCTION, arguments)`` pairs: continued lines joined, comments and blanks dropped."""
    instructions, pending = [], ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):  # Docker drops comments inside a continued line too
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        keyword, _, args = (pending + line).partition(" ")
        instructions.append((keyword.upper(), args.strip()))
        pending = ""
    assert not pending, "the Dockerfile ends inside a continued line"
    return instructions


def _args(instructions, keyword: str) -> list[str]:
    return [args for kw, args in instructions if kw == keyword]


def shell_commands(script: str) -> list[list[str]]:
    """The simple commands of a RUN's shell script, split at ``&&``, ``||``, ``;``, pipes, groups."""
    lexer = shlex.shlex(script, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    commands, current = [], []
    for token in lexer:
        if token in ("&&", "||", ";", "|", "(", ")", "{", "}"):
            commands.append(current)
            current = []
        else:
            current.append(token)
    return [c for c in commands + [current] if c]


def _runs(instructions) -> list[list[list[str]]]:
    return [shell_commands(args) for args in _args(instructions, "RUN")]


def _pip_requirements(command: list[str]) -> list[Requirement]:
    """Requirements named on a ``pip install`` command line (options and their values skipped)."""
    if "pip" not in command or "install" not in command:
        return []
    takes_value = {
        "-c",
        "--constraint",
        "-r",
        "--requirement",
        "-i",
        "--index-url",
        "--extra-index-url",
        "-f",
        "--find-links",
        "-t",
        "--target",
        "--prefix",
        "--root",
    }
    words = command[command.index("install") + 1 :]
    reqs, skip = [], False
    for word in words:
        if skip or word.startswith("-"):
            skip = not skip and word in takes_value
            continue
        try:
            reqs.append(Requirement(word))
        except InvalidRequirement:  # a path such as "."
            pass
    return reqs


def check_base_image(text: str) -> None:
    """One stage, FROM tensorflow/tensorflow:<X.Y.Z>-gpu with X.Y.Z inside setup.cfg's pin."""
    froms = _args(parse_dockerfile(text), "FROM")
    assert len(froms) == 1, f"expected one stage, found FROM {froms}"
    image = [w for w in froms[0].split() if not w.startswith("--")][0]
    name, _, tag = image.partition(":")
    assert name == "tensorflow/tensorflow", image
    match = re.fullmatch(r"(\d+\.\d+\.\d+)-gpu", tag)
    assert match, f"{image}: expected a release GPU tag such as 2.21.0-gpu"
    pin = re.search(r"^[ \t]+(tensorflow[<>=!~,.\d ]+)$", (ROOT / "setup.cfg").read_text(), flags=re.M).group(1)
    assert Version(match.group(1)) in Requirement(pin.replace(" ", "")).specifier, (image, pin)


def check_cudnn9(text: str) -> None:
    """A RUN installs cuDNN 9 (and only 9): the nvidia-cudnn-cu12 wheel, then ldconfig, or libcudnn9."""
    for run in _runs(parse_dockerfile(text)):
        for command in run:
            if any(re.fullmatch(r"libcudnn9(-cuda-\d+)?", w) for w in command) and "install" in command:
                return
            for req in _pip_requirements(command):
                if req.name == "nvidia-cudnn-cu12":
                    spec = req.specifier
                    assert (
                        spec.contains("9.3.0.75") and not spec.contains("8.9.7.29") and not spec.contains("10.0.0")
                    ), f"{req} must select cuDNN 9.x"
                    assert ["ldconfig"] in run, "the cuDNN 9 wheel's libraries must be registered with ldconfig"
                    return
    raise AssertionError("no RUN installs cuDNN 9 (TensorFlow 2.21 runs on the CPU with cuDNN 8)")


def check_package_install(text: str) -> None:
    """The package is installed with the image's TensorFlow kept: a constraint, no TF requirement."""
    instructions = parse_dockerfile(text)
    for args in _args(instructions, "COPY"):
        sources = [w for w in args.split() if not w.startswith("--")][:-1]
        for source in sources:
            assert (ROOT / source).exists(), f"COPY {source}: not in the checkout"
    commands = [c for run in _runs(instructions) for c in run]
    for command in commands:
        names = {r.name.lower() for r in _pip_requirements(command)}
        assert not names & {"tensorflow", "tensorflow-gpu", "keras"}, f"{shlex.join(command)} replaces TF/Keras"
    installs = [c for c in commands if "pip" in c and "install" in c and "." in c]
    assert installs and all("-c" in c or "--constraint" in c for c in installs), installs


def check_entrypoint(text: str) -> None:
    """ENTRYPOINT ["keras-clust"] in exec form (signals reach the program; arguments append)."""
    entries = _args(parse_dockerfile(text), "ENTRYPOINT")
    assert entries, "no ENTRYPOINT"
    try:
        entry = json.loads(entries[-1])
    except json.JSONDecodeError:
        raise AssertionError(f"ENTRYPOINT {entries[-1]} is in shell form; use the exec form") from None
    assert entry == ["keras-clust"], entry


def check_non_root_user(text: str) -> None:
    """The last USER is not root, a RUN before it created that user and gave it the work folder."""
    instructions = parse_dockerfile(text)
    users = [i for i, (kw, _) in enumerate(instructions) if kw == "USER"]
    assert users, "no USER: the container would run as root"
    user = instructions[users[-1]][1].split(":")[0]
    assert user not in ("root", "0"), f"USER {user} is root"
    before = [c for kw, args in instructions[: users[-1]] if kw == "RUN" for c in shell_commands(args)]
    assert any(c[0] in ("useradd", "adduser") and c[-1] == user for c in before), f"no RUN creates user {user}"
    workdirs = _args(instructions, "WORKDIR")
    assert workdirs, "no WORKDIR"
    owners = [c for c in before if c[0] == "chown" and any(w.split(":")[0] == user for w in c[1:])]
    assert any(
        workdirs[-1] in c or "-R" in c and any(workdirs[-1].startswith(w.rstrip("/") + "/") for w in c) for c in owners
    ), f"{user} does not own the work folder {workdirs[-1]}"


def dockerignore_excludes(patterns: list[str], path: str) -> bool:
    """Whether Docker leaves ``path`` (relative to the context) out, given .dockerignore's lines.

    Docker's rules: ``*`` and ``?`` stay inside one folder, ``**`` spans folders, a pattern
    that matches a folder excludes everything under it, ``!`` re-includes, the last match wins.
    """
    excluded = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        pattern = pattern.lstrip("!").strip().strip("/")
        regex = ""
        for piece in re.split(r"(\*\*/|\*\*|\*|\?|\[[^]]*\])", pattern):
            if piece.startswith("[") and piece.endswith("]") and len(piece) > 2:
                regex += "[" + re.sub(r"^[!^]", "^", piece[1:-1]) + "]"
            else:
                regex += {"**/": "(?:.*/)?", "**": ".*", "*": "[^/]*", "?": "[^/]"}.get(piece, re.escape(piece))
        parts = path.split("/")
        if any(re.fullmatch(regex, "/".join(parts[:n])) for n in range(1, len(parts) + 1)):
            excluded = not negate
    return excluded


def check_dockerignore(ignore_text: str | None, dockerfile_text: str) -> None:
    """Environments, history, results and caches stay out of the build context; COPY sources stay in."""
    assert ignore_text is not None, "no .dockerignore: .venv, .git and runs/ would be sent to the daemon"
    patterns = [p.strip() for p in ignore_text.splitlines() if p.strip() and not p.lstrip().startswith("#")]
    for path in (
        ".venv/bin/python",
        ".git/HEAD",
        "runs/mnist-l1/20240101-000000/metrics.json",
        "saved_models/mnist_l1_encoder_z16/1/saved_model.pb",
        "keras_clust/__pycache__/cli.cpython-311.pyc",
        "apps/fashion_cae/__pycache__/run.cpython-311.pyc",
        ".pytest_cache/v/cache/lastfailed",
        ".ruff_cache/content",
        "keras_clust.egg-info/PKG-INFO",
        "build/lib/keras_clust/cli.py",
        "dist/keras_clust-0.1.0-py3-none-any.whl",
    ):
        assert dockerignore_excludes(patterns, path), f".dockerignore lets {path} into the build context"
    copied = [
        w
        for args in _args(parse_dockerfile(dockerfile_text), "COPY")
        for w in args.split()[:-1]
        if not w.startswith("--")
    ]
    for source in copied:
        files = (
            [source]
            if (ROOT / source).is_file()
            else [p.relative_to(ROOT).as_posix() for p in (ROOT / source).rglob("*.py") if "__pycache__" not in p.parts]
        )
        assert files, source
        for path in files:
            assert not dockerignore_excludes(patterns, path), f".dockerignore drops {path}, which the image COPYs"


DOCKER_CHECKS = {
    "base_image": check_base_image,
    "cudnn9": check_cudnn9,
    "package_install": check_package_install,
    "entrypoint": check_entrypoint,
    "non_root_user": check_non_root_user,
}


@pytest.mark.parametrize("check", DOCKER_CHECKS)
def test_dockerfile(check):
    DOCKER_CHECKS[check](DOCKERFILE.read_text())


def test_dockerignore():
    check_dockerignore(DOCKERIGNORE.read_text() if DOCKERIGNORE.exists() else None, DOCKERFILE.read_text())


def test_dockerfile_parser():
    text = "# c\nFROM a:1 AS b\nRUN x \\\n# dropped\n && y 'p q' \\\n  || z\n\nuser  me\n"
    assert parse_dockerfile(text) == [("FROM", "a:1 AS b"), ("RUN", "x  && y 'p q'  || z"), ("USER", "me")]
    assert shell_commands("a b && c 'd && e' || { f; g | h; }") == [["a", "b"], ["c", "d && e"], ["f"], ["g"], ["h"]]
    ignore = ["runs", "**/__pycache__", "saved_models/*", "!saved_models/README.md", "*.egg-info"]
    assert dockerignore_excludes(ignore, "runs/a/b.json") and not dockerignore_excludes(ignore, "apps/runs.py")
    assert dockerignore_excludes(ignore, "a/b/__pycache__/c.pyc") and dockerignore_excludes(ignore, "x.egg-info/P")
    assert dockerignore_excludes(ignore, "saved_models/m/1/x.pb") and dockerignore_excludes(["**/*.py[cod]"], "a/b.pyc")
    assert not dockerignore_excludes(["**/*.py[cod]"], "a/b.py") and dockerignore_excludes(["[!a]*"], "b")
    assert not dockerignore_excludes(ignore, "saved_models/README.md")
    assert not dockerignore_excludes(ignore, "keras_clust/x.egg-info/P")


# (check, text replaced in the real Dockerfile, replacement): each broken copy must fail its check.
BROKEN_DOCKERFILES = [
    ("base_image", "tensorflow/tensorflow:2.21.0-gpu", "tensorflow/tensorflow:2.20.0-gpu"),
    ("base_image", "tensorflow/tensorflow:2.21.0-gpu", "tensorflow/tensorflow:2.21.0"),
    ("base_image", "tensorflow/tensorflow:2.21.0-gpu", "tensorflow/tensorflow:latest-gpu"),
    ("base_image", "FROM ", "FROM python:3.11 AS build\nFROM "),
    ("cudnn9", '"nvidia-cudnn-cu12>=9.3,<10"', '"nvidia-cudnn-cu12>=8.9"'),
    ("cudnn9", '"nvidia-cudnn-cu12>=9.3,<10"', "nvidia-cudnn-cu12"),
    ("cudnn9", '"nvidia-cudnn-cu12>=9.3,<10"', "nvidia-cudnn-cu11"),
    ("cudnn9", "&& ldconfig", "&& true"),
    ("package_install", "-c /tmp/keep-tf.txt .", "."),
    ("package_install", "-c /tmp/keep-tf.txt .", "-c /tmp/keep-tf.txt . tensorflow==2.21.0"),
    ("package_install", "COPY apps ./apps", "COPY app ./apps"),
    ("entrypoint", 'ENTRYPOINT ["keras-clust"]', "ENTRYPOINT keras-clust"),
    ("entrypoint", 'ENTRYPOINT ["keras-clust"]', 'ENTRYPOINT ["python3", "-m", "keras_clust"]'),
    ("entrypoint", 'ENTRYPOINT ["keras-clust"]\n', ""),
    ("non_root_user", "USER keras\n", ""),
    ("non_root_user", "USER keras\n", "USER root\n"),
    ("non_root_user", "USER keras\n", "USER keras\nUSER 0:0\n"),
    ("non_root_user", "USER keras\n", "USER nobody2\n"),
    ("non_root_user", "useradd --create-home --shell /bin/bash keras", "true"),
    ("non_root_user", "chown -R keras:keras /work", "chown -R keras:keras /opt"),
]


@pytest.mark.parametrize("check, old, new", BROKEN_DOCKERFILES)
def test_docker_checks_catch_broken_copies(check, old, new):
    text = DOCKERFILE.read_text()
    assert old in text, f"the Dockerfile changed; update this case: {old!r}"
    with pytest.raises(AssertionError):
        DOCKER_CHECKS[check](text.replace(old, new, 1))


@pytest.mark.parametrize("drop", [".venv", ".git", "runs", "saved_models", ".pytest_cache", "no file", "+ **/*.py"])
def test_dockerignore_check_catches_broken_copies(drop):
    lines = DOCKERIGNORE.read_text().splitlines()
    if drop == "no file":
        broken = None
    elif drop.startswith("+ "):  # a pattern that also drops what the image COPYs
        broken = "\n".join([*lines, drop[2:]])
    else:
        assert drop in lines
        broken = "\n".join(line for line in lines if line != drop)
    with pytest.raises(AssertionError):
        check_dockerignore(broken, DOCKERFILE.read_text())


# --- scripts/setup.sh, run against a temporary venv -----------------------------------------
# setup.sh is run for real, with VENV= a temporary venv whose pip is a stand-in that logs
# its arguments (so "no pip call" is checked, not assumed), KERAS_HOME/HOME in tmp_path,
# and apt-get/sudo stand-ins that fail. Nothing touches the network or the real .venv.

SETUP = ROOT / "scripts" / "setup.sh"

FAKE_PIP = '''"""A stand-in for pip: logs its arguments; 'install -e' records keras-clust as installed."""
import json
import os
import sys
import sysconfig
from pathlib import Path

args = [a for a in sys.argv[1:] if a != "--disable-pip-version-check"]
log = Path(os.environ["FAKE_PIP_LOG"])
earlier = log.read_text().splitlines() if log.exists() else []
with log.open("a") as f:
    f.write(" ".join(args) + "\\n")
if "install" in args and "-e" in args:
    if sum("-e" in line.split() for line in earlier) < int(os.environ.get("FAKE_PIP_FAIL", "0")):
        sys.exit("fake pip: install failed")
    info = Path(sysconfig.get_paths()["purelib"]) / "keras_clust-0.1.0.dist-info"
    info.mkdir(exist_ok=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\\nName: keras-clust\\nVersion: 0.1.0\\n")
    url = {"url": Path.cwd().resolve().as_uri(), "dir_info": {"editable": True}}
    (info / "direct_url.json").write_text(json.dumps(url))
'''


def _script(path: Path, body: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\n" + body + "\n")
    path.chmod(0o755)


class SetupSandbox:
    """A venv without pip plus a pip stand-in, and the environment to run setup.sh in."""

    def __init__(self, tmp: Path):
        self.tmp, self.venv = tmp, tmp / "venv"
        subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(self.venv)], check=True)
        purelib = subprocess.run(
            [str(self.venv / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
        self.site = Path(purelib)
        self.pip_log, self.fetch_log, self.apt_log = tmp / "pip.log", tmp / "fetch.log", tmp / "apt.log"
        self.keras_home = tmp / "keras-home"
        for tool in ("apt-get", "sudo"):  # never let a test reach the real package manager
            _script(tmp / "bin" / tool, f'echo "$0 $*" >> "{self.apt_log}"; exit 1')
        _script(self.venv / "bin" / "keras-clust", f'echo "$*" >> "{self.fetch_log}"; exit "${{FAKE_FETCH_RC:-1}}"')
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "KERAS_"))}
        self.env.update(
            VENV=str(self.venv),
            KERAS_HOME=str(self.keras_home),
            HOME=str(tmp / "home"),
            PATH=f"{tmp / 'bin'}:{os.environ['PATH']}",
            FAKE_PIP_LOG=str(self.pip_log),
            PIP_CONFIG_FILE=os.devnull,
            PIP_NO_INDEX="1",
        )

    def fake_pip(self, version: str = "24.0") -> None:
        (self.site / "pip").mkdir(exist_ok=True)
        (self.site / "pip" / "__init__.py").write_text(f'__version__ = "{version}"\n')
        (self.site / "pip" / "__main__.py").write_text(FAKE_PIP)

    def run(self, *args: str, **env: str) -> subprocess.CompletedProcess:
        for log in (self.pip_log, self.fetch_log):
            log.unlink(missing_ok=True)
        return subprocess.run(
            ["bash", str(SETUP), *args],
            env={**self.env, **env},
            capture_output=True,
            text=True,
            timeout=120,
            stdin=subprocess.DEVNULL,
        )

    def pip_calls(self) -> list[str]:
        calls = self.pip_log.read_text().splitlines() if self.pip_log.exists() else []
        return [c for c in calls if c != "--version"]

    def fetches(self) -> list[str]:
        return self.fetch_log.read_text().splitlines() if self.fetch_log.exists() else []


@pytest.fixture
def sandbox(tmp_path):
    return SetupSandbox(tmp_path)


def test_setup_refuses_python_older_than_3_10(tmp_path):
    _script(tmp_path / "bin" / "python3", "echo 3.9.18")  # answers any -c with an old version
    _script(tmp_path / "bin" / "apt-get", "exit 1")
    env = {**os.environ, "VENV": str(tmp_path / "venv"), "PATH": f"{tmp_path / 'bin'}:{os.environ['PATH']}"}
    env.pop("PYTHON", None)
    res = subprocess.run(
        ["bash", str(SETUP)], env=env, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL
    )
    assert res.returncode == 1, res
    (line,) = res.stderr.splitlines()
    assert "Python >= 3.10" in line and "3.9.18" in line and "PYTHON=" in line, line
    assert not (tmp_path / "venv").exists()


def test_setup_installs_once_then_runs_no_pip(sandbox):
    sandbox.fake_pip("24.0")
    first = sandbox.run("--test")
    assert first.returncode == 0, first.stderr
    assert sandbox.pip_calls() == ["install -q -e .[test]"]  # a recent pip is not upgraded
    again = sandbox.run("--test", PIP_INDEX_URL="http://127.0.0.1:9/simple")
    assert again.returncode == 0, again.stderr
    assert sandbox.pip_calls() == [] and "pip not run" in again.stdout
    assert sandbox.run().returncode == 0 and sandbox.pip_calls() == []  # [test] covers the plain install


def test_setup_reinstalls_when_requirements_or_checkout_change(sandbox):
    sandbox.fake_pip()
    assert sandbox.run().returncode == 0 and sandbox.pip_calls() == ["install -q -e ."]
    marker = sandbox.venv / ".keras-clust-setup"
    assert marker.read_text().startswith("sha256=")
    assert sandbox.run("--test").returncode == 0 and sandbox.pip_calls() == ["install -q -e .[test]"]
    marker.write_text(marker.read_text().replace("sha256=", "sha256=0"))  # setup.cfg changed since
    assert sandbox.run("--test").returncode == 0 and sandbox.pip_calls() == ["install -q -e .[test]"]
    url = sandbox.site / "keras_clust-0.1.0.dist-info" / "direct_url.json"
    url.write_text(url.read_text().replace("file://", "file:///elsewhere"))  # installed from another clone
    assert sandbox.run("--test").returncode == 0 and sandbox.pip_calls() == ["install -q -e .[test]"]


def test_setup_upgrades_pip_only_when_too_old_or_install_fails(sandbox):
    sandbox.fake_pip("21.2.4")
    assert sandbox.run().returncode == 0
    assert sandbox.pip_calls() == ["install -q --upgrade pip", "install -q -e ."]
    sandbox.fake_pip("21.3")
    (sandbox.venv / ".keras-clust-setup").unlink()
    res = sandbox.run(FAKE_PIP_FAIL="1")
    assert res.returncode == 0 and "failed; upgrading pip" in res.stderr, res.stderr
    assert sandbox.pip_calls() == ["install -q -e .", "install -q --upgrade pip", "install -q -e ."]
    (sandbox.venv / ".keras-clust-setup").unlink()
    res = sandbox.run(FAKE_PIP_FAIL="2")
    assert res.returncode == 1 and res.stderr.splitlines()[-1].startswith("setup: error: could not install")


def test_setup_repairs_a_venv_left_without_pip(sandbox):
    sandbox.fake_pip()
    assert sandbox.run().returncode == 0
    for path in (sandbox.site / "pip").rglob("*"):
        path.unlink()
    (sandbox.site / "pip").rmdir()  # as after 'python3 -m venv' stopped before ensurepip ran
    res = sandbox.run()  # ensurepip needs no network; the install is up to date
    assert res.returncode == 0, res.stderr
    assert "no working pip" in res.stdout and "pip not run" in res.stdout
    pip = subprocess.run(
        [str(sandbox.venv / "bin" / "python"), "-m", "pip", "--version"],
        capture_output=True,
        text=True,
        env=sandbox.env,
    )
    assert pip.returncode == 0 and str(sandbox.venv) in pip.stdout, pip


def test_setup_fetches_mnist_only_when_missing(sandbox):
    sandbox.fake_pip()
    res = sandbox.run()
    assert res.returncode == 0 and sandbox.fetches() == ["data fetch mnist"]
    assert "warning: full MNIST was not fetched" in res.stderr  # the fetch failed: a warning only
    (sandbox.keras_home / "datasets").mkdir(parents=True)
    (sandbox.keras_home / "datasets" / "mnist.npz").write_bytes(b"")
    assert sandbox.run().returncode == 0 and sandbox.fetches() == []
    env = {k: v for k, v in sandbox.env.items() if k != "KERAS_HOME"}
    sandbox.env = env  # without KERAS_HOME: ~/.keras/datasets, HOME being tmp_path/home
    res = sandbox.run(FAKE_FETCH_RC="0")
    assert res.returncode == 0 and sandbox.fetches() == ["data fetch mnist"] and "warning" not in res.stderr
    (Path(env["HOME"]) / ".keras" / "datasets").mkdir(parents=True)
    (Path(env["HOME"]) / ".keras" / "datasets" / "mnist.npz").write_bytes(b"")
    assert sandbox.run().returncode == 0 and sandbox.fetches() == []


# --- .ci/run: every step can fail the job ---------------------------------------------------


@pytest.mark.parametrize("failing, code", [(None, 0), ("SETUP", 3), ("RUFF", 1), ("PYTEST", 1), ("PYTEST", 5)])
def test_ci_run_fails_when_any_step_fails(tmp_path, failing, code):
    (tmp_path / ".ci").mkdir()
    (tmp_path / ".ci" / "run").write_text((ROOT / ".ci" / "run").read_text())
    log = tmp_path / "ci.log"
    for name, path in (("SETUP", "scripts/setup.sh"), ("RUFF", ".venv/bin/ruff"), ("PYTEST", ".venv/bin/python")):
        _script(tmp_path / path, f'echo "{name} $* CI=$CI" >> "{log}"; exit "${{FAIL_{name}:-0}}"')
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    if failing:
        env[f"FAIL_{failing}"] = str(code)
    res = subprocess.run(
        ["bash", ".ci/run"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL
    )
    assert res.returncode == code, (res, log.read_text())
    steps = log.read_text().splitlines()
    if failing is None or failing == "PYTEST":  # CI=true even where the runner did not set it
        assert steps == [
            "SETUP --test CI=true",
            "RUFF check . CI=true",
            "RUFF format --check . CI=true",
            "SETUP --test CI=true",
            "PYTEST -m pytest -m not slow -n 2 --dist loadfile --durations=20 CI=true",
        ]
    else:
        assert not any(s.startswith("PYTEST") for s in steps), steps


# --- Under CI, a test skipped for a missing dataset fails (tests/conftest.py) -------------

TINY_TESTS = """
import pytest


@pytest.mark.needs_dataset("fashion-mnist")
def test_marked():
    pass


@pytest.mark.skipif(True, reason="Fashion-MNIST not installed (apt-get install dataset-fashion-mnist)")
def test_plain_skipif_for_data():
    pass


def test_skip_for_another_reason():
    pytest.skip("needs a GPU")


def test_plain():
    pass
"""
MODULE_SKIP = 'import pytest\n\npytest.skip("MNIST dataset missing", allow_module_level=True)\n'


@pytest.mark.parametrize(
    "ci, missing, outcomes",
    [
        (None, True, {"passed": 1, "skipped": 4}),
        ("false", True, {"passed": 1, "skipped": 4}),
        ("true", True, {"passed": 1, "skipped": 1, "errors": 3}),  # failed in setup or collection
        ("true", False, {"passed": 2, "skipped": 1, "errors": 2}),
    ],
)
def test_missing_dataset_skips_on_a_workstation_and_fails_under_ci(pytester, monkeypatch, ci, missing, outcomes):
    import conftest

    monkeypatch.setattr(conftest, "dataset_missing", lambda name: f"{name} not found in /nowhere" if missing else None)
    if ci is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", ci)
    pytester.makepyfile(test_tiny=TINY_TESTS, test_module_skip=MODULE_SKIP)
    result = pytester.runpytest_inprocess(
        "-p", "no:cacheprovider", "--continue-on-collection-errors", plugins=[conftest]
    )
    result.assert_outcomes(**outcomes)
    assert (result.ret != 0) == (ci == "true")
    if ci == "true":
        result.stdout.fnmatch_lines(["*under CI, which must install it*"])


def test_the_mnist_sample_counts_as_missing_full_mnist(tmp_path, monkeypatch):
    import conftest

    monkeypatch.setenv("KERAS_HOME", str(tmp_path))  # an empty Keras cache
    monkeypatch.delenv("KERAS_CLUST_DATA", raising=False)
    assert "5,000" in conftest.dataset_missing.__wrapped__("mnist")
    assert conftest.dataset_missing.__wrapped__("digits") is None
