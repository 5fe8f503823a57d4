"""One record of a search, whichever engine ran it, so runs can be compared and drawn."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field

from keras_clust.markdown import markdown_table

STATES = ("complete", "pruned", "failed")


@dataclass
class TrialRecord:
    """One trial: its parameters, state, value and validation loss per epoch."""

    number: int
    state: str
    params: dict
    value: float | None
    curve: list[float] = field(default_factory=list)
    seconds: float | None = None


@dataclass
class SearchResult:
    """What a search found.

    Attributes:
        engine: ``optuna`` or ``kerastuner``.
        algorithm: Sampler/tuner name (``TPE``, ``bayesian``, ``hyperband``, ``random``).
        objective: Name of the minimised quantity (``val_loss``).
        trials: Every trial, in order.
        seconds: Wall time of this search call.
        study_name: Optuna study or KerasTuner project name.
        storage: Optuna storage URL or KerasTuner directory.
        resumed_trials: Trials that existed before this call (a resumed study).
        checkpoint_trial: Trial whose trained model this call saved, if any.
    """

    engine: str
    algorithm: str
    objective: str
    trials: list[TrialRecord]
    seconds: float
    study_name: str
    storage: str
    resumed_trials: int = 0
    checkpoint_trial: int | None = None

    @property
    def completed(self) -> list[TrialRecord]:
        return [t for t in self.trials if t.state == "complete" and t.value is not None and math.isfinite(t.value)]

    @property
    def best(self) -> TrialRecord | None:
        done = self.completed
        return min(done, key=lambda t: t.value) if done else None

    def counts(self) -> dict[str, int]:
        return {s: sum(t.state == s for t in self.trials) for s in STATES}

    def summary(self) -> dict:
        best = self.best
        return {
            "engine": self.engine,
            "algorithm": self.algorithm,
            "trials": len(self.trials),
            **self.counts(),
            "best_value": best.value if best else None,
            "best_trial": best.number if best else None,
            "seconds": round(self.seconds, 1),
        }

    def to_dict(self) -> dict:
        return {**asdict(self), "summary": self.summary(), "best_params": self.best.params if self.best else None}

    def trial_rows(self) -> list[dict]:
        return [
            {"trial": t.number, "state": t.state, "value": t.value, "epochs": len(t.curve), **t.params}
            for t in self.trials
        ]


def search_section(title: str, entry: Mapping) -> list[str]:
    """The lines of one search in a Markdown report: a heading, where its study lives (and the
    earlier trials it resumed with) and the table of its trials.

    Args:
        title: The section's heading.
        entry: :meth:`SearchResult.to_dict` with ``trial_rows`` (as ``metrics.json`` keeps it).
    """
    resumed = f"; resumed with {entry['resumed_trials']} earlier trials" if entry["resumed_trials"] else ""
    return [
        f"## {title}",
        "",
        f"Study `{entry['study_name']}` in `{entry['storage']}`{resumed}.",
        "",
        markdown_table(entry["trial_rows"], floatfmt=".4g"),
        "",
    ]


def to_optuna_study(result: SearchResult, space):
    """An in-memory Optuna study holding ``result``'s trials, for Optuna's figures."""
    import optuna
    from optuna.trial import TrialState

    from keras_clust.tuning.space import optuna_distributions

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    dists = optuna_distributions(space)
    state = {"complete": TrialState.COMPLETE, "pruned": TrialState.PRUNED, "failed": TrialState.FAIL}
    study = optuna.create_study(direction="minimize", study_name=result.study_name)
    for t in result.trials:
        st = state[t.state]
        ok = st == TrialState.COMPLETE and t.value is not None and math.isfinite(t.value)
        study.add_trial(
            optuna.trial.create_trial(
                state=st if ok or st != TrialState.COMPLETE else TrialState.FAIL,
                value=t.value if ok else None,
                params=t.params,
                distributions={k: dists[k] for k in t.params},
                intermediate_values={i: v for i, v in enumerate(t.curve) if math.isfinite(v)},
            )
        )
    return study
