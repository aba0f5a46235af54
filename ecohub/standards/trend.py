"""The Mann-Kendall trend test and Sen's slope of a series measured at ordered times, as
used for trends of annual air-quality figures (e.g. the national bulletins' PM2.5
trend over several years).

The test is Mann (1945, *Econometrica* 13:245) with Kendall's variance and its
correction for ties (Kendall 1975, *Rank Correlation Methods*), in the form of Gilbert
(1987, *Statistical Methods for Environmental Pollution Monitoring*, §16.4):

S = Σ_{k<j} sgn(x_j − x_k);
VAR(S) = [n(n−1)(2n+5) − Σ_p t_p(t_p−1)(2t_p+5)] / 18 (t_p: size of the p-th tie group);
Z = (S − 1)/√VAR(S) if S > 0, 0 if S = 0, (S + 1)/√VAR(S) if S < 0;
the two-sided p-value is 2·(1 − Φ(|Z|)).

Sen's slope (Sen 1968, *JASA* 63:1379; Gilbert §16.5) is the median of
(x_j − x_k)/(t_j − t_k) over all pairs k < j. Missing values (NaN) are left out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike


@dataclass(frozen=True)
class MannKendall:
    """The result of a two-sided Mann-Kendall test at significance level ``alpha``."""

    n: int  # values tested
    s: int  # Mann-Kendall statistic S
    var_s: float  # VAR(S), corrected for ties
    z: float | None  # None with fewer than 3 values or VAR(S) = 0
    p: float | None  # two-sided p-value
    tau: float | None  # Kendall's tau-a: S / (n(n−1)/2)
    slope: float | None  # Sen's slope, per unit of time
    trend: str  # "increasing", "decreasing" or "no trend" (p ≥ alpha or too few values)


def sen_slope(times: ArrayLike, values: ArrayLike) -> float | None:
    """Sen's slope: the median of the pairwise slopes (x_j − x_k)/(t_j − t_k), k < j
    (Sen 1968; Gilbert 1987 §16.5); None with fewer than two values."""
    t = np.asarray(times, dtype=float)
    x = np.asarray(values, dtype=float)
    j, k = np.triu_indices(t.size, 1)
    spans = t[k] - t[j]
    usable = spans != 0
    if not usable.any():
        return None
    return float(np.median((x[k] - x[j])[usable] / spans[usable]))


def mann_kendall(times: ArrayLike, values: ArrayLike, alpha: float = 0.05) -> MannKendall:
    """The two-sided Mann-Kendall test of ``values`` ordered by ``times`` (NaN left out),
    with Sen's slope (see the module docstring for the formulas and sources)."""
    t = np.asarray(times, dtype=float)
    x = np.asarray(values, dtype=float)
    kept = ~np.isnan(x)
    order = np.argsort(t[kept], kind="stable")
    t, x = t[kept][order], x[kept][order]
    n = int(x.size)
    j, k = np.triu_indices(n, 1)
    s = int(np.sign(x[k] - x[j]).sum())
    _, ties = np.unique(x, return_counts=True)
    var_s = float(n * (n - 1) * (2 * n + 5) - np.sum(ties * (ties - 1) * (2 * ties + 5))) / 18
    slope = sen_slope(t, x)
    if n < 3 or var_s <= 0:
        return MannKendall(n, s, var_s, None, None, None, slope, "no trend")
    z = 0.0 if s == 0 else (s - math.copysign(1, s)) / math.sqrt(var_s)
    p = math.erfc(abs(z) / math.sqrt(2))  # 2·(1 − Φ(|Z|))
    trend = "no trend" if p >= alpha else ("increasing" if z > 0 else "decreasing")
    return MannKendall(n, s, var_s, z, p, s / (n * (n - 1) / 2), slope, trend)
