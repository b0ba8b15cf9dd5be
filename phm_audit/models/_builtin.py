"""Built-in models that stand for what health systems use: learners, rules and clinician judgement."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.exceptions import NotFittedError

from phm_audit._checks import as_scores, check_columns, check_int
from phm_audit.exceptions import PhmInputError
from phm_audit.models._validation import check_no_outcomes, id_normal, patient_ids
from phm_audit.synth._schema import CONDITIONS

__all__ = [
    "ACTUARIAL_FEATURES",
    "COST_LABELS",
    "EMERGENCY_FEATURES",
    "ClinicianJudgement",
    "GradientBoostingRiskModel",
    "RuleRiskModel",
    "kind_for_label",
]

#: What commercial actuarial tools (Johns Hopkins ACG, Milliman MARA) read: age, sex, recorded
#: diagnoses and prior use and cost. Neither ethnicity nor area deprivation: these tools do not
#: use them, which is exactly why an audit must look at both.
ACTUARIAL_FEATURES: tuple[str, ...] = (
    "age",
    "sex",
    *(f"rec_{c}" for c in CONDITIONS),
    "n_ltc_recorded",
    "frailty_deficits_recorded",
    "gp_contacts",
    "outpatient_attendances",
    "ae_attendances",
    "emergency_admissions",
    "elective_admissions",
    "cost_prior",
)

#: QAdmissions (Hippisley-Cox & Coupland 2013) adds self-assigned ethnicity and area deprivation
#: (Townsend score) to age, sex, diagnoses and prior admissions; here IMD quintile stands for Townsend.
EMERGENCY_FEATURES: tuple[str, ...] = (*ACTUARIAL_FEATURES, "imd_quintile", "ethnicity")

#: Labels measured in money: a learner trained on one of these is ``actuarial``, otherwise ``clinical``.
COST_LABELS: tuple[str, ...] = ("cost_next", "avoidable_cost_next")


def kind_for_label(label: str) -> str:
    """``actuarial`` for a cost label, ``clinical`` for a health outcome."""
    return "actuarial" if label in COST_LABELS else "clinical"


#: Below this many rows the learners run on one thread: OpenMP's start-up and busy-waiting cost more
#: than the work, and on a busy 2-core machine a small fit took 5 times as long on two threads.
SMALL_FIT_ROWS = 20_000


@contextlib.contextmanager
def _threads(n_threads: int | None, n_rows: int) -> Iterator[None]:
    if n_threads is None and n_rows >= SMALL_FIT_ROWS:
        yield
        return
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1 if n_threads is None else int(n_threads), user_api="openmp"):
        yield


def _check_fitted(model: object, attribute: str) -> None:
    if not hasattr(model, attribute):
        name = getattr(model, "name", type(model).__name__)
        raise NotFittedError(f"model '{name}' is not fitted; call fit(train) before score(cohort)")


class GradientBoostingRiskModel:
    """A gradient-boosted learner (scikit-learn ``HistGradientBoosting*``) trained on one label.

    A regressor for numeric labels (cost, condition counts), a classifier for a true/false label
    (``emergency_admission_next``; the score is then the predicted probability).

    Parameters
    ----------
    name : str
        Name in results.
    kind : {"actuarial", "clinical"}
        ``actuarial`` when the label is a cost, ``clinical`` when it is a health outcome.
    target : str
        The label to learn.
    features : sequence of str
        Cohort columns to learn from. Categories (``sex``, ``ethnicity``) are coded as integers in the
        order of their categories, booleans as 0/1; the learner sees one numeric column per feature,
        so explanations map one-to-one onto cohort columns.
    description : str, default ""
        One line for ``phm-audit models``.
    max_train_rows : int, default 200_000
        Fit on at most this many people, drawn at random (seeded by ``random_state``), so that fitting
        on a cohort of a million stays fast; beyond a few hundred thousand the fit barely changes.
    max_iter : int, default 100
        Boosting iterations.
    learning_rate : float, default 0.1
        Shrinkage.
    max_leaf_nodes : int, default 31
        Leaves per tree.
    min_samples_leaf : int, default 100
        People per leaf at least (steadies the fit on heavy-tailed cost).
    random_state : int, default 0
        Seed of the row sample; the fit is deterministic.
    n_threads : int, optional
        OpenMP threads for fitting and scoring; default all cores, or one for fewer than
        :data:`SMALL_FIT_ROWS` rows. Set 1 on a busy machine.

    Attributes
    ----------
    estimator_ : HistGradientBoostingRegressor or HistGradientBoostingClassifier
        The fitted learner; it takes :meth:`design_matrix` of a cohort.
    categories_ : dict of str to list
        The categories of each categorical feature seen in fit; unseen ones are coded as missing.
    n_train_rows_ : int
        People the learner was fitted on.

    Examples
    --------
    >>> from phm_audit.synth import generate
    >>> from phm_audit.models import get_model, split_cohort
    >>> train, audit = split_cohort(generate("england", 4000, seed=1))
    >>> model = get_model("actuarial_cost").fit(train)
    >>> model.score(audit).shape == (len(audit),)
    True
    """

    def __init__(
        self,
        name: str,
        *,
        kind: str,
        target: str,
        features: Sequence[str],
        description: str = "",
        max_train_rows: int = 200_000,
        max_iter: int = 100,
        learning_rate: float = 0.1,
        max_leaf_nodes: int = 31,
        min_samples_leaf: int = 100,
        random_state: int = 0,
        n_threads: int | None = None,
    ) -> None:
        self.name = name
        self.kind = kind
        self.target = target
        self.features = list(features)
        self.description = description
        self.max_train_rows = max_train_rows
        self.max_iter = max_iter
        self.learning_rate = learning_rate
        self.max_leaf_nodes = max_leaf_nodes
        self.min_samples_leaf = min_samples_leaf
        self.random_state = random_state
        self.n_threads = n_threads

    def __repr__(self) -> str:
        return f"GradientBoostingRiskModel(name={self.name!r}, kind={self.kind!r}, target={self.target!r})"

    def _check_params(self) -> None:
        for attr, low in (("max_train_rows", 100), ("max_iter", 1), ("max_leaf_nodes", 2), ("min_samples_leaf", 1)):
            check_int(getattr(self, attr), attr, low)
        if not 0 < float(self.learning_rate) <= 1:
            raise PhmInputError(f"learning_rate must be in (0, 1]; got {self.learning_rate}")
        if self.target in self.features:
            raise PhmInputError(f"model '{self.name}' cannot read its own target '{self.target}' as a feature")
        if not self.features:
            raise PhmInputError(f"model '{self.name}' has no features; give at least one cohort column")

    def design_matrix(self, cohort: pd.DataFrame) -> pd.DataFrame:
        """The numeric table the learner sees: one float64 column per feature, in ``features`` order.

        Parameters
        ----------
        cohort : pandas.DataFrame

        Returns
        -------
        pandas.DataFrame
            Booleans as 0/1, categories as their integer code in ``categories_`` (missing or unseen
            values as NaN, which the learner handles), numbers as they are.
        """
        check_columns(cohort, self.features, f"model '{self.name}'")
        cats = getattr(self, "categories_", None)
        columns: dict[str, np.ndarray] = {}
        for name in self.features:
            col = cohort[name]
            known = None if cats is None else cats.get(name)
            if known is not None or _is_categorical(col):
                categories = known if known is not None else _categories(col)
                codes = pd.Categorical(col, categories=categories).codes.astype(np.float64)
                codes[codes < 0] = np.nan
                columns[name] = codes
            else:
                try:
                    columns[name] = col.to_numpy(dtype=np.float64, na_value=np.nan)
                except (TypeError, ValueError):
                    raise PhmInputError(
                        f"column '{name}' is not numeric (dtype {col.dtype}); model '{self.name}' needs numbers there"
                    ) from None
        return pd.DataFrame(columns, index=cohort.index)

    def fit(self, cohort: pd.DataFrame) -> GradientBoostingRiskModel:
        """Fit the learner on ``cohort`` (at most ``max_train_rows`` people of it).

        Parameters
        ----------
        cohort : pandas.DataFrame
            Training people: features and the target label. Never the people to be audited
            (see :func:`split_cohort`).

        Returns
        -------
        self
        """
        self._check_params()
        check_columns(cohort, [*self.features, self.target], f"model '{self.name}'")
        check_no_outcomes(f"model '{self.name}'", self.features, cohort, allow_truth=False)
        n = len(cohort)
        if n < 100:
            raise PhmInputError(f"model '{self.name}' needs at least 100 people to fit; got {n}")
        if n > self.max_train_rows:
            rng = np.random.default_rng(self.random_state)
            rows = np.sort(rng.choice(n, size=self.max_train_rows, replace=False))
            cohort = cohort.iloc[rows]
        y_raw = cohort[self.target]
        classify = y_raw.dtype == bool
        y = y_raw.to_numpy(dtype=np.int8 if classify else np.float64)
        if not classify and not np.isfinite(y).all():
            raise PhmInputError(
                f"label '{self.target}' has {int((~np.isfinite(y)).sum())} missing or infinite value(s); "
                "a learner needs a value for every training person"
            )
        if classify and np.unique(y).size < 2:
            raise PhmInputError(f"label '{self.target}' has one value only in the training people; nothing to learn")
        self.categories_ = {name: _categories(cohort[name]) for name in self.features if _is_categorical(cohort[name])}
        X = self.design_matrix(cohort)
        common: dict[str, Any] = {
            "max_iter": self.max_iter,
            "learning_rate": self.learning_rate,
            "max_leaf_nodes": self.max_leaf_nodes,
            "min_samples_leaf": self.min_samples_leaf,
            "early_stopping": False,
            "random_state": self.random_state,
        }
        estimator = HistGradientBoostingClassifier(**common) if classify else HistGradientBoostingRegressor(**common)
        with _threads(self.n_threads, len(cohort)):
            self.estimator_ = estimator.fit(X, y)
        self.n_train_rows_ = len(cohort)
        return self

    def score(self, cohort: pd.DataFrame) -> np.ndarray:
        """Predicted label (expected value, or probability for a true/false label) for each person.

        Parameters
        ----------
        cohort : pandas.DataFrame

        Returns
        -------
        ndarray of float64, shape (len(cohort),)
        """
        _check_fitted(self, "estimator_")
        X = self.design_matrix(cohort)
        with _threads(self.n_threads, len(cohort)):
            if isinstance(self.estimator_, HistGradientBoostingClassifier):
                raw = self.estimator_.predict_proba(X)[:, 1]
            else:
                raw = self.estimator_.predict(X)
        return as_scores(raw, len(cohort), f"model '{self.name}'")


def _is_categorical(col: pd.Series) -> bool:
    """Categories and text (object or string dtype) are coded; numbers and booleans are used as they are."""
    return isinstance(col.dtype, pd.CategoricalDtype) or not pd.api.types.is_numeric_dtype(col.dtype)


def _categories(col: pd.Series) -> list[Any]:
    if isinstance(col.dtype, pd.CategoricalDtype):
        return list(col.dtype.categories)
    return sorted(col.dropna().astype(str).unique().tolist())


class RuleRiskModel:
    """A fixed rule: the score is one column of the cohort, divided by a constant. Nothing is learned.

    Parameters
    ----------
    name : str
        Name in results.
    column : str
        The column scored.
    target : str
        The outcome the rule is used to anticipate (its "own" label).
    divisor : float, default 1.0
        Scale (36 turns a deficit count into an eFI).
    description : str, default ""
        One line for ``phm-audit models``.

    Notes
    -----
    Counts tie: many people share a score. How ties at a threshold are resolved is the referral
    rule's business (see :mod:`phm_audit.audit`), not the model's.

    Examples
    --------
    >>> from phm_audit.models import get_model
    >>> import pandas as pd
    >>> get_model("ltc_count").fit(None).score(pd.DataFrame({"n_ltc_recorded": [0, 3]})).tolist()
    [0.0, 3.0]
    """

    kind = "rule"

    def __init__(self, name: str, *, column: str, target: str, divisor: float = 1.0, description: str = "") -> None:
        self.name = name
        self.column = column
        self.target = target
        self.divisor = divisor
        self.description = description
        self.features = [column]

    def __repr__(self) -> str:
        return f"RuleRiskModel(name={self.name!r}, column={self.column!r})"

    def fit(self, cohort: pd.DataFrame | None = None) -> RuleRiskModel:
        """Check the rule's column exists (when a cohort is given) and return ``self``; a rule learns nothing."""
        if not float(self.divisor) > 0:
            raise PhmInputError(f"divisor of rule '{self.name}' must be positive; got {self.divisor}")
        if cohort is not None:
            check_columns(cohort, self.features, f"rule '{self.name}'")
        return self

    def score(self, cohort: pd.DataFrame) -> np.ndarray:
        """``cohort[column] / divisor`` as float64.

        Parameters
        ----------
        cohort : pandas.DataFrame

        Returns
        -------
        ndarray of float64, shape (len(cohort),)
        """
        check_columns(cohort, self.features, f"rule '{self.name}'")
        values = pd.to_numeric(cohort[self.column], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
        return as_scores(values / float(self.divisor), len(cohort), f"rule '{self.name}'")


class ClinicianJudgement:
    """A simulated structured professional judgement: true need seen through documented noise.

    The clinician is assumed to see how ill a person really is (the generator's ground truth
    ``need_true``, baseline need, not the outcome year), imperfectly::

        score = reliability * z + sqrt(1 - reliability**2) * e

    where ``z`` is the standardised ``log1p(need_true)`` (mean and spread learned in :meth:`fit`) and
    ``e`` a standard normal drawn per ``patient_id`` from ``seed``, so the same person always gets the
    same judgement. ``reliability`` is the correlation between the judgement and true (log) need:
    1 is a perfect clinician, 0 a coin. The default 0.7 is an assumption, of the order of the
    inter-rater reliability reported for structured clinical tools; vary it to see how good a
    clinician must be to beat a cost model.

    This is the only built-in model that reads ground truth, which is why it is of kind
    ``judgement``: it stands for what actuarial tools are compared against (Grove et al. 2000).

    Parameters
    ----------
    reliability : float, default 0.7
        Correlation of the judgement with true log need, in [0, 1].
    seed : int, default 0
        Seed of the per-person noise.
    name : str, default "clinician_judgement"
        Name in results.
    description : str, default ""
        One line for ``phm-audit models``.

    Attributes
    ----------
    center_, scale_ : float
        Mean and standard deviation of ``log1p(need_true)`` in the fitted people.

    Examples
    --------
    >>> from phm_audit.synth import generate
    >>> from phm_audit.models import get_model
    >>> cohort = generate("england", 2000, seed=1)
    >>> model = get_model("clinician_judgement", reliability=1.0).fit(cohort)
    >>> bool(np.corrcoef(model.score(cohort), np.log1p(cohort["need_true"]))[0, 1] > 0.999)
    True
    """

    kind = "judgement"
    target = "need_true_next"

    def __init__(
        self,
        reliability: float = 0.7,
        *,
        seed: int = 0,
        name: str = "clinician_judgement",
        description: str = "",
    ) -> None:
        self.reliability = reliability
        self.seed = seed
        self.name = name
        self.description = description
        self.features = ["need_true"]

    def __repr__(self) -> str:
        return f"ClinicianJudgement(reliability={self.reliability!r}, seed={self.seed!r})"

    def _log_need(self, cohort: pd.DataFrame) -> np.ndarray:
        check_columns(
            cohort,
            self.features,
            f"model '{self.name}'",
            fix="it simulates a clinician who sees true need, so it needs a generated cohort with ground truth",
        )
        need = pd.to_numeric(cohort["need_true"], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
        bad = ~np.isfinite(need) | (need < 0)
        if bad.any():
            raise PhmInputError(
                f"column 'need_true' has {int(bad.sum())} missing, negative or infinite value(s); "
                f"model '{self.name}' needs a true need of 0 or more for every person"
            )
        return np.log1p(need)

    def fit(self, cohort: pd.DataFrame) -> ClinicianJudgement:
        """Learn the mean and spread of true log need; uses no outcome.

        Parameters
        ----------
        cohort : pandas.DataFrame
            People with ``need_true``.

        Returns
        -------
        self
        """
        r = self.reliability
        if isinstance(r, bool) or not isinstance(r, int | float | np.floating | np.integer) or not 0 <= r <= 1:
            raise PhmInputError(f"reliability must be a number in [0, 1]; got {r!r}")
        log_need = self._log_need(cohort)
        if log_need.size < 2:
            raise PhmInputError(f"model '{self.name}' needs at least 2 people to fit; got {log_need.size}")
        self.center_ = float(log_need.mean())
        self.scale_ = float(log_need.std()) or 1.0
        return self

    def score(self, cohort: pd.DataFrame) -> np.ndarray:
        """The judgement of each person (unitless; higher = judged to need more care).

        Parameters
        ----------
        cohort : pandas.DataFrame
            People with ``patient_id`` and ``need_true``.

        Returns
        -------
        ndarray of float64, shape (len(cohort),)
        """
        _check_fitted(self, "center_")
        z = (self._log_need(cohort) - self.center_) / self.scale_
        noise = id_normal(patient_ids(cohort).to_numpy(), seed=int(self.seed), salt=0x4A55)
        r = float(self.reliability)
        return as_scores(r * z + np.sqrt(1.0 - r * r) * noise, len(cohort), f"model '{self.name}'")
