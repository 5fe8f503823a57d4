"""The project's own promises: README commands, CI script, Dockerfile, installed apps."""

import re
import subprocess
import sys
import zipfile
from pathlib import Path

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


def test_dockerfile_essentials():
    text = (ROOT / "Dockerfile").read_text()
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]
    setup = (ROOT / "setup.cfg").read_text()
    pin = re.search(r"tensorflow>=(\d+\.\d+),<", setup).group(1)
    froms = [line for line in lines if line.startswith("FROM ")]
    assert froms == [f"FROM tensorflow/tensorflow:{pin}.0-gpu"]
    assert re.search(r"nvidia-cudnn-cu12>=9", text), "cuDNN 9 must be installed for TF >= 2.18"
    assert "ldconfig" in text
    assert lines[-2:] == ['ENTRYPOINT ["keras-clust"]', 'CMD ["--help"]']
    installs = [line for line in lines if "pip install" in line]
    assert not any(re.search(r"pip install[^&]*\btensorflow\b", line) for line in installs)
    assert "-c /tmp/keep-tf.txt" in text  # the package install keeps the image's TensorFlow
    for folder in ("keras_clust", "apps"):
        assert f"COPY {folder} ./{folder}" in text


def test_runtime_dependencies_declared():
    setup = (ROOT / "setup.cfg").read_text()
    for dep in ("tensorflow", "keras-tuner", "tensorboard", "optuna", "optuna-integration",
                "scikit-learn", "scipy", "opencv-python-headless", "numpy", "matplotlib", "mlxtend"):
        assert re.search(rf"^\s+{re.escape(dep)}\b", setup, flags=re.M), dep
    assert "[build-system]" in (ROOT / "pyproject.toml").read_text()


def test_wheel_contains_apps_and_entry_point(tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path),
                    str(ROOT)], check=True)
    (wheel,) = tmp_path.glob("keras_clust-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "apps/mnist_l1.py" in names and "keras_clust/cli.py" in names
    assert "apps/fashion_cae/tune.py" in names and "keras_clust/tuning/space.py" in names
    entry = next(n for n in names if n.endswith("entry_points.txt"))
    assert "keras-clust = keras_clust.cli:main" in zipfile.ZipFile(wheel).read(entry).decode()


def test_readme_lists_every_experiment():
    from keras_clust.cli import EXPERIMENTS

    readme = (ROOT / "README.md").read_text()
    table = readme.split("## Experiments", 1)[1].split("\n\n", 2)[1]
    for name in EXPERIMENTS:
        assert f"`keras-clust {name} " in table, name
