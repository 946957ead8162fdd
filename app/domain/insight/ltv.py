"""Predicted lifetime value: the BG/NBD model of repeat purchases with the Gamma-Gamma model of
spend per order, fitted by maximum likelihood.

The formulas are the published ones: Fader, Hardie and Lee, "Counting Your Customers the Easy
Way: An Alternative to the Pareto/NBD Model" (Marketing Science, 2005), equations (6), (10) and
(13) and the P(alive) of their appendix note; Fader and Hardie, "The Gamma-Gamma Model of
Monetary Value" (2013), equations (1) and (5). Maintained Python packages of these models were
either unmaintained (`lifetimes`, last release 2020) or pulled in a probabilistic-programming
stack (PyMC), so they are written here with NumPy and SciPy and tested against the paper's worked
example and against data simulated from known parameters (tests/unit/test_ltv_model.py).

Per customer: `x` repeat purchases (orders after the first), `t_x` the time of the last one and
`age` the time since the first, both measured from the first order, in weeks.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.optimize import minimize
from scipy.special import gammaln, hyp2f1

Array = NDArray[np.float64]
M = TypeVar("M")
WEEKS_PER_YEAR = 365.25 / 7
# Parameters are fitted as logarithms, kept inside a range where the likelihood is finite.
_LOG_BOUNDS = (-9.0, 9.0)


def _array(values: ArrayLike) -> Array:
    return np.asarray(values, dtype=np.float64)


@dataclass(frozen=True, slots=True)
class BgNbd:
    """Purchase rates are Gamma(r, alpha) across customers; after each purchase a customer
    drops out with a probability that is Beta(a, b) across customers."""

    r: float
    alpha: float
    a: float
    b: float

    def log_likelihood(self, x: ArrayLike, t_x: ArrayLike, age: ArrayLike) -> Array:
        """Each customer's log-likelihood (equation 6 of the paper)."""
        x, t_x, age = _array(x), _array(t_x), _array(age)
        r, alpha, a, b = self.r, self.alpha, self.a, self.b
        a1 = gammaln(r + x) - gammaln(r) + r * np.log(alpha)
        a2 = gammaln(a + b) + gammaln(b + x) - gammaln(b) - gammaln(a + b + x)
        a3 = -(r + x) * np.log(alpha + age)
        repeat = x > 0
        with np.errstate(divide="ignore", invalid="ignore"):
            a4 = np.where(
                repeat,
                np.log(a)
                - np.log(np.where(repeat, b + x - 1, 1.0))
                - (r + x) * np.log(alpha + t_x),
                -np.inf,
            )
        result: Array = a1 + a2 + np.logaddexp(a3, a4)
        return result

    def probability_alive(self, x: ArrayLike, t_x: ArrayLike, age: ArrayLike) -> Array:
        """P(still active | x, t_x, T); 1 for a customer without repeat purchases."""
        x, t_x, age = _array(x), _array(t_x), _array(age)
        ratio = self._dropout_odds(x, t_x, age)
        result: Array = 1.0 / (1.0 + ratio)
        return result

    def expected_purchases(
        self,
        t: float,
        x: ArrayLike,
        t_x: ArrayLike,
        age: ArrayLike,
    ) -> Array:
        """Expected purchases in the next `t` weeks given the history (equation 10)."""
        x, t_x, age = _array(x), _array(t_x), _array(age)
        r, alpha, a, b = self.r, self.alpha, self.a, self.b
        z = t / (alpha + age + t)
        hyper = hyp2f1(r + x, b + x, a + b + x - 1, z)
        growth = 1.0 - ((alpha + age) / (alpha + age + t)) ** (r + x) * hyper
        result: Array = (a + b + x - 1) / (a - 1) * growth / (1.0 + self._dropout_odds(x, t_x, age))
        return result

    def _dropout_odds(self, x: Array, t_x: Array, age: Array) -> Array:
        """a / (b + x - 1) × ((alpha + T) / (alpha + t_x))^(r + x) for x > 0, else 0."""
        repeat = x > 0
        denominator = np.where(repeat, self.b + x - 1, 1.0)
        log_odds = (
            np.log(self.a)
            - np.log(denominator)
            + (self.r + x) * (np.log(self.alpha + age) - np.log(self.alpha + t_x))
        )
        result: Array = np.where(repeat, np.exp(np.minimum(log_odds, 700.0)), 0.0)
        return result


@dataclass(frozen=True, slots=True)
class GammaGamma:
    """Spend per order is Gamma(p, nu) around each customer's mean, and nu is Gamma(q, gamma)
    across customers."""

    p: float
    q: float
    gamma: float

    def log_likelihood(self, x: ArrayLike, mean_spend: ArrayLike) -> Array:
        """Log-likelihood of `x` orders averaging `mean_spend` (x ≥ 1), up to a constant that
        does not depend on the parameters."""
        x, m = _array(x), _array(mean_spend)
        p, q, gamma = self.p, self.q, self.gamma
        result: Array = (
            gammaln(p * x + q)
            - gammaln(p * x)
            - gammaln(q)
            + q * np.log(gamma)
            + (p * x - 1) * np.log(m)
            + p * x * np.log(x)
            - (p * x + q) * np.log(gamma + x * m)
        )
        return result

    def expected_spend(self, x: ArrayLike, mean_spend: ArrayLike) -> Array:
        """E[spend per order | x orders averaging mean_spend] (equation 5): a weighted mean of
        the population's mean and the customer's own, the latter weighing more with more orders."""
        x, m = _array(x), _array(mean_spend)
        result: Array = self.p * (self.gamma + x * m) / (self.p * x + self.q - 1)
        return result

    @property
    def population_mean(self) -> float:
        return self.p * self.gamma / (self.q - 1) if self.q > 1 else float("nan")


@dataclass(frozen=True, slots=True)
class Fit(Generic[M]):
    model: M
    log_likelihood: float
    converged: bool


def _fit(
    negative_log_likelihood: Callable[[Array], float], start: Array
) -> tuple[Array, float, bool]:
    bounds = [_LOG_BOUNDS] * len(start)
    found = minimize(negative_log_likelihood, start, method="L-BFGS-B", bounds=bounds)
    if not found.success:
        again = minimize(
            negative_log_likelihood,
            found.x,
            method="Nelder-Mead",
            bounds=bounds,
            options={"maxiter": 4000, "xatol": 1e-6, "fatol": 1e-8},
        )
        if again.fun <= found.fun:
            found = again
    return np.asarray(found.x, dtype=np.float64), float(found.fun), bool(found.success)


def fit_bgnbd(x: ArrayLike, t_x: ArrayLike, age: ArrayLike) -> Fit[BgNbd]:
    """Maximum-likelihood BG/NBD parameters for these customers."""
    x, t_x, age = _array(x), _array(t_x), _array(age)
    # Weeks are large next to the other parameters: start alpha near the mean age.
    start = np.log(np.array([0.5, max(float(np.mean(age)), 1.0) / 4, 1.0, 2.0]))

    def negative(log_params: Array) -> float:
        r, alpha, a, b = np.exp(log_params)
        total = float(np.sum(BgNbd(r, alpha, a, b).log_likelihood(x, t_x, age)))
        return -total if np.isfinite(total) else 1e300

    found, value, converged = _fit(negative, start)
    r, alpha, a, b = (float(v) for v in np.exp(found))
    return Fit(BgNbd(r, alpha, a, b), -value, converged)


def fit_gamma_gamma(x: ArrayLike, mean_spend: ArrayLike) -> Fit[GammaGamma]:
    """Maximum-likelihood Gamma-Gamma parameters from customers' order counts and mean spend."""
    x, m = _array(x), _array(mean_spend)
    start = np.log(np.array([1.0, 2.0, max(float(np.mean(m)), 1.0)]))

    def negative(log_params: Array) -> float:
        p, q, gamma = np.exp(log_params)
        total = float(np.sum(GammaGamma(p, q, gamma).log_likelihood(x, m)))
        return -total if np.isfinite(total) else 1e300

    found, value, converged = _fit(negative, start)
    p, q, gamma = (float(v) for v in np.exp(found))
    return Fit(GammaGamma(p, q, gamma), -value, converged)
