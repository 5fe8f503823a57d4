"""Re-score a finished lj-fluid run's configurations with the current physical scoring (issue 24, item 2).

A study, not a timing, and no training: it loads a run folder's saved models (the coordinate
and distance VAEs' posteriors and decoders, their learned likelihood sigma and the coordinate
network), rebuilds the run's splits from its ``dataset.npz`` and config, and scores the
reconstructed, generated (decoder's mean) and sampled (likelihood sample) configurations, raw
and relaxed, with the uniform reference, exactly as ``lj-fluid run`` now does
(``apps/lj_fluid/physical.py``). The runs it was written for are design runs (the simulations
of seeds 100 and 101), never the reported one:

    .venv/bin/python bench/study_lj_physical.py /tmp/w/design_runs/lj-fluid/20261206-065124-s101

``--separation`` tries another distance for the pairs to be pushed apart to before the sweeps,
``--sweeps`` other counts of Metropolis sweeps (comma-separated: each count is scored in turn,
every chain from the same seed, so a longer count's chains pass through a shorter one's
positions), ``--ladder`` the other counts every relaxed row is also scored at (the run's
``RELAX_LADDER`` by default; ``--ladder ''`` for the ``--sweeps`` counts alone). Each call's
seconds are printed and kept.
Prints the report's table and appends it, with the run and the machine, to ``--out`` (default
``bench/results/lj_physical.json``); the figures go to ``--figures`` (default: a temporary folder).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from keras_clust.apps.lj_fluid.config import Config  # noqa: E402
from keras_clust.apps.lj_fluid.data import acquire, split_data  # noqa: E402
from keras_clust.apps.lj_fluid.physical import (  # noqa: E402
    COORDINATE_VIEWS,
    RELAX_LADDER,
    RELAX_SEPARATION,
    RELAX_SWEEPS,
    ladder_rows,
    physical_rows,
    physical_samples,
)
from keras_clust.apps.lj_fluid.pipeline import likelihood_log_var  # noqa: E402
from keras_clust.experiment import config_from_saved  # noqa: E402
from keras_clust.files import append_json_row, read_json  # noqa: E402
from keras_clust.markdown import markdown_table  # noqa: E402
from keras_clust.provenance import machine_info  # noqa: E402
from keras_clust.run_folder import load_run_models  # noqa: E402


class _Folder:
    """The two things :func:`physical_samples` asks of a run: ``file(name)`` and ``figures``."""

    def __init__(self, root: Path):
        self.root = root
        self.figures = root / "figures"
        self.figures.mkdir(parents=True, exist_ok=True)

    def file(self, name: str) -> Path:
        return self.root / name


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("run", type=Path, help="a folder written by 'keras-clust lj-fluid run'")
    p.add_argument(
        "--separation",
        type=float,
        default=RELAX_SEPARATION,
        help="pairs are pushed apart to this (sigma) before the sweeps",
    )
    p.add_argument(
        "--sweeps",
        default=str(RELAX_SWEEPS),
        help="comma-separated counts of Metropolis sweeps after the separation",
    )
    p.add_argument(
        "--ladder",
        default=",".join(str(c) for c in RELAX_LADDER),
        help="comma-separated counts of sweeps every relaxed row is also scored at ('' for none)",
    )
    p.add_argument("--figures", type=Path, default=None, help="where the arrays and figures go")
    p.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "lj_physical.json")
    a = p.parse_args(argv)
    cfg = config_from_saved(Config, read_json(a.run / "config.json"), str(a.run), "lj-fluid")
    sim, cfg = acquire(replace(cfg, dataset=str(a.run / "dataset.npz")), progress=False)
    data = split_data(sim, cfg)
    files = [f"{v}_{part}.keras" for v in COORDINATE_VIEWS for part in ("posterior", "decoder")]
    models = load_run_models(a.run, [*files, "coordinate_net.keras"])
    vaes = {
        v: SimpleNamespace(encoder=models[f"{v}_posterior.keras"], decoder=models[f"{v}_decoder.keras"])
        for v in COORDINATE_VIEWS
    }
    log_vars = {v: likelihood_log_var(a.run, v) for v in COORDINATE_VIEWS}
    root = a.figures or Path(tempfile.mkdtemp(prefix="lj_physical_"))
    ladder = tuple(int(c) for c in a.ladder.split(",") if c.strip())
    for sweeps in (int(c) for c in a.sweeps.split(",")):
        start = time.perf_counter()
        metrics = physical_samples(
            vaes, log_vars, models["coordinate_net.keras"], data, cfg, _Folder(root), a.separation, sweeps, ladder
        )
        seconds = time.perf_counter() - start
        rows = physical_rows(metrics)
        print(markdown_table(rows, floatfmt=".3f"))
        if ladder:
            print(markdown_table(ladder_rows(metrics), floatfmt=".3f"))
        print(f"{sweeps} sweeps (ladder {list(ladder)}): {seconds:.1f} s", flush=True)
        append_json_row(
            a.out,
            {
                "run": str(a.run),
                "seed": cfg.seed,
                "separation": a.separation,
                "relax_sweeps": metrics["relax_sweeps"],
                "ladder": metrics["relax_ladder"],
                "seconds": round(seconds, 1),
                "table": rows,
            },
            {"study": "bench/study_lj_physical.py", "machine": machine_info()},
        )
    print(f"arrays and figures (the last count's): {root}")


if __name__ == "__main__":
    main()
