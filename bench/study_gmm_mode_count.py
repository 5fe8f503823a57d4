"""How do gmm-vae's mode counts score the mixtures' own samples? (issue 24, item 6)

No model is trained: the mixtures' own samples are the ceiling of every row, and a count that
the true mixture fails measures the sample size and the weights, not the model. On the design
mixtures that no run reports (3-D seeds 200-204, sd 1; 2-D seeds 300-304, sd 0.2; 10 components,
means in [-10, 10], flat-Dirichlet weights), ``--repeats`` fresh samples of ``n`` draws each are
counted four ways: a mode needs 1 % of all samples; half or a quarter of the high-quality samples
the mixture's own samples give it on average (``n * w_k * P(chi2_d <= 9)``) and at least one;
or one sample (lenient).

The rule, fixed before any model was scored with it: the largest share under which the mixtures'
own samples score 10 of 10 in at least 99 % of the repeats on both design sets, at the smallest
``n`` for which one exists.

Usage:
    .venv/bin/python bench/study_gmm_mode_count.py

Writes ``--out`` (default ``bench/results/gmm_mode_count.json``).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from keras_clust.cluster import mode_coverage, weighted_need  # noqa: E402
from keras_clust.data import random_mixture, sample_mixture  # noqa: E402
from keras_clust.files import atomic_write_text  # noqa: E402

CASES = {"3-D, sd 1, seeds 200-204": (3, 1.0, range(200, 205)), "2-D, sd 0.2, seeds 300-304": (2, 0.2, range(300, 305))}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--draws", default="1000,10000", help="sample sizes n, comma-separated")
    p.add_argument("--repeats", type=int, default=200)
    p.add_argument("--out", default="bench/results/gmm_mode_count.json")
    a = p.parse_args()
    rows = []
    for n in map(int, a.draws.split(",")):
        for case, (dim, sd, seeds) in CASES.items():
            counts = {"1 % of samples": [], "1/2 own share": [], "1/4 own share": [], "1 sample": []}
            for seed in seeds:
                mix = random_mixture(dim, 10, 10.0, sd**2, seed=seed)
                for r in range(a.repeats):
                    x, _ = sample_mixture(mix, n, seed=10_000 + r)
                    cov = mode_coverage(x, mix)
                    counts["1 % of samples"].append(cov.modes_captured_min_share)
                    counts["1 sample"].append(cov.modes_captured)
                    for label, share in (("1/2 own share", 0.5), ("1/4 own share", 0.25)):
                        counts[label].append(int(np.sum(cov.counts >= weighted_need(cov.expected, share))))
            for label, v in counts.items():
                v = np.asarray(v)
                rows.append(
                    {
                        "n": n,
                        "mixtures": case,
                        "count": label,
                        "mean modes": float(v.mean()),
                        "share 10/10": float(np.mean(v == 10)),
                    }
                )
                print(
                    f"n {n:>6}  {case:28s}  {label:15s}  mean {v.mean():.3f}  10/10 in {100 * np.mean(v == 10):.1f} %"
                )
    weights = {
        case: [min(random_mixture(d, 10, 10.0, s**2, seed=x).weights) for x in seeds]
        for case, (d, s, seeds) in CASES.items()
    }
    atomic_write_text(
        Path(a.out), json.dumps({"repeats": a.repeats, "lightest_weights": weights, "rows": rows}, indent=1) + "\n"
    )


if __name__ == "__main__":
    main()
