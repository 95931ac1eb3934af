"""Drift statistics: population stability index and the two-sample Kolmogorov-Smirnov test."""

from __future__ import annotations

import numpy as np


def psi(reference: np.ndarray, current: np.ndarray, bins: int = 10) -> float:
    """Population stability index of ``current`` against ``reference``.

    Bins are reference quantiles (so each holds ~1/bins of the reference); values outside the
    reference range fall in the first or last bin. Rule of thumb: < 0.1 stable, 0.1-0.25
    moderate shift, > 0.25 major shift. Meaningful only for samples of hundreds of values or
    more: the monitoring pipeline skips smaller periods (``min_drift_rows``).
    """
    reference = reference[~np.isnan(reference)]
    current = current[~np.isnan(current)]
    if len(reference) == 0 or len(current) == 0:
        return float("nan")
    edges = np.unique(np.quantile(reference, np.linspace(0, 1, bins + 1)[1:-1]))
    ref_share = _smoothed_shares(np.searchsorted(edges, reference, side="right"), len(edges) + 1)
    cur_share = _smoothed_shares(np.searchsorted(edges, current, side="right"), len(edges) + 1)
    return float(np.sum((cur_share - ref_share) * np.log(cur_share / ref_share)))


def _smoothed_shares(bin_index: np.ndarray, n_bins: int) -> np.ndarray:
    """Bin shares with Laplace smoothing (+0.5 per bin): an empty bin in a small sample must not
    weigh like a certainty (a 1e-6 floor makes each empty bin add ~1.15 to the PSI)."""
    counts = np.bincount(bin_index, minlength=n_bins) + 0.5
    return counts / counts.sum()


def ks(reference: np.ndarray, current: np.ndarray) -> tuple[float, float]:
    """(statistic, p-value) of the two-sample Kolmogorov-Smirnov test, NaNs dropped."""
    reference = reference[~np.isnan(reference)]
    current = current[~np.isnan(current)]
    if len(reference) == 0 or len(current) == 0:
        return float("nan"), float("nan")
    from scipy import stats  # imported when drift is measured, not at pipeline registration

    result = stats.ks_2samp(reference, current)
    return float(result.statistic), float(result.pvalue)
