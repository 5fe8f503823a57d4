"""``gmm-vae tune``: the preset sweep, run on mixtures that ``gmm-vae run`` does not report.

Every candidate of :data:`SWEEP` is trained on every mixture seed (100-104 by default) and
scored as ``run`` scores its rows. The winner has the most modes captured (headline,
mean over mixtures), then the highest high-quality share (3 sd), then the lowest held-out
-ELBO. ``apps/gmm_vae/preset_sweep.md`` holds the table that chose :data:`TUNED`.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from keras_clust.app import add_tensorboard_argument, non_negative_int, positive_int, seed_list, tensorboard_dir
from keras_clust.apps.gmm_vae.config import (
    NAME,
    QUICK_EPOCHS,
    QUICK_SAMPLES,
    SWEEP,
    SWEEP_MIXTURE_SEEDS,
    Config,
    mixture_data,
)
from keras_clust.apps.gmm_vae.pipeline import score, train_vae, true_nll
from keras_clust.apps.gmm_vae.report import SUMMARY_COLUMNS, _cell, _get, summarise
from keras_clust.errors import UsageError
from keras_clust.parallel import map_in_processes
from keras_clust.runs import RunFolder, markdown_table, seed_model, set_seed
from keras_clust.training import fit_context


def sweep_table(results: dict[str, dict[str, dict]]) -> tuple[list[dict], str]:
    """Rows ``candidate -> mean ± sd (min–max)`` over the mixtures, and the winner's name."""
    rows, keys = [], {}
    for name, per_mixture in results.items():
        cols = {
            c: summarise([_get(m, path) * scale for m in per_mixture.values()]) for c, path, scale in SUMMARY_COLUMNS
        }
        keys[name] = (cols["modes >= min share"]["mean"], cols["HQ % (3 sd)"]["mean"], -cols["-ELBO nats"]["mean"])
        rows.append({"candidate": name, **{c: _cell(cols[c], 3 if c == "-ELBO nats" else 1) for c in cols}})
    return rows, max(keys, key=keys.get)


@dataclass(frozen=True)
class SweepCell:
    """One candidate on one mixture: a piece of the sweep that any process can train."""

    cfg: Config
    name: str
    mixture_seed: int
    tensorboard: Path | None = None


def train_cell(cell: SweepCell) -> dict:
    """Train and score one candidate on one mixture, as ``run`` scores its rows; the model is
    seeded from the run seed, the candidate and the mixture alone, so the numbers do not depend
    on the process or the order."""
    cfg = cell.cfg
    data = mixture_data(cfg, cell.mixture_seed)
    s = SWEEP[cell.name]
    s = replace(s, epochs=min(s.epochs, QUICK_EPOCHS)) if cfg.quick else s
    logs = None if cell.tensorboard is None else cell.tensorboard / f"{data.key}-{cell.name}"
    with fit_context(tensorboard=logs):
        trained = train_vae(cell.name, s, data, lambda key: seed_model(cfg.seed, key))
    result, _ = score(cell.name, s, trained, data, cfg, cfg.seed + 1, kmeans=False)
    return {
        "mixture": data.key,
        "result": result,
        "true_nll": true_nll(data),
        "history": trained.fit.rows(mixture=data.key, model=cell.name),
    }


def tune(args: argparse.Namespace) -> int:
    seeds = tuple(args.mixture_seeds)
    if set(seeds) & set(Config().mixture_seeds):
        raise UsageError(
            f"--mixture-seeds {','.join(map(str, seeds))}: the sweep must not use the mixtures 'run' "
            f"reports ({','.join(map(str, Config().mixture_seeds))})"
        )
    candidates = args.candidates or list(SWEEP)
    unknown = [c for c in candidates if c not in SWEEP]
    if unknown:
        raise UsageError(f"--candidates: unknown {unknown}; choose from {', '.join(SWEEP)}")
    cfg = Config(mixture_seeds=seeds, seed=args.seed, quick=args.quick, export=False)
    if cfg.quick:
        cfg.samples, cfg.generated, cfg.mixture_seeds = QUICK_SAMPLES, QUICK_SAMPLES, seeds[:2]
    set_seed(cfg.seed)
    start = time.perf_counter()
    command = (
        "keras-clust gmm-vae tune"
        + "".join(
            f" --{k.replace('_', '-')} {','.join(map(str, v)) if isinstance(v, (list, tuple)) else v}"
            for k, v in (("mixture_seeds", seeds), ("candidates", args.candidates), ("seed", args.seed))
            if v is not None
        )
        + (" --quick" if args.quick else "")
    )
    with RunFolder(args.out, NAME, cfg.seed) as rf:
        rf.write_config(
            {
                "experiment": NAME,
                "action": "tune",
                **asdict(cfg),
                "candidates": candidates,
                "command": command,
                "workers": args.workers,
            }
        )
        logs = tensorboard_dir(args, rf)
        cells = [SweepCell(cfg, name, mixture_seed, logs) for mixture_seed in cfg.mixture_seeds for name in candidates]
        results: dict[str, dict[str, dict]] = {name: {} for name in candidates}
        nll, history = {}, []
        for cell, done in zip(cells, map_in_processes(train_cell, cells, args.workers, cfg.seed), strict=True):
            results[cell.name][done["mixture"]] = done["result"]
            nll[done["mixture"]] = done["true_nll"]
            history += done["history"]
        rows, best = sweep_table(results)
        seconds = round(time.perf_counter() - start, 1)
        rf.write_metrics(
            {"run_id": rf.run_id, "results": results, "true_nll": nll, "best": best, "total_seconds": seconds}
        )
        rf.write_history(history)
        text = (
            "\n".join(
                [
                    f"# gmm-vae preset sweep `{rf.run_id}`",
                    "",
                    f"Command: `{command}` ({seconds} s wall).",
                    "",
                    f"Mixture seeds {', '.join(map(str, cfg.mixture_seeds))} ({cfg.samples} training and "
                    f"held-out samples each, {cfg.dim}-D, {cfg.components} components); "
                    "mean ± sd (min–max) over them. Candidates: "
                    + "; ".join(f"`{n}` = {SWEEP[n]}" for n in candidates)
                    + ".",
                    "",
                    "Chosen: most modes captured (>= 1 % of the samples), then highest high-quality share (3 sd), then "
                    f"lowest held-out -ELBO: **{best}**.",
                    "",
                    markdown_table(rows),
                    "",
                    "True NLL of the held-out samples (nats): "
                    + ", ".join(f"{k} {v:.3f}" for k, v in nll.items())
                    + ".",
                ]
            )
            + "\n"
        )
        rf.write_report(text)
    print(markdown_table(rows), end="")
    print(f"chosen: {best}")
    print(f"run folder: {rf.path}")
    return 0


def add_tune_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--seed", type=non_negative_int, default=0, help="run seed: model seeds and prior draws (default: 0)"
    )
    p.add_argument("--out", type=Path, default=Path("runs"), help="root folder of run folders (default: runs/)")
    add_tensorboard_argument(p)
    p.add_argument(
        "--mixture-seeds",
        type=seed_list,
        default=SWEEP_MIXTURE_SEEDS,
        help="mixtures of the sweep, none of run's (default: 100,101,102,103,104)",
    )
    p.add_argument(
        "--candidates",
        type=lambda t: [c.strip() for c in t.split(",") if c.strip()],
        default=None,
        help=f"comma-separated subset of {', '.join(SWEEP)} (default: all)",
    )
    p.add_argument("--quick", action="store_true", help="smoke run: 2 mixtures, 500 samples, 5 epochs")
    p.add_argument(
        "--workers",
        type=positive_int,
        default=1,
        help="train the sweep's cells (a candidate on a mixture) in N processes on this machine, the "
        "cores shared between them; the table is the one a single process gives (default: 1)",
    )
