"""The BG/NBD and Gamma-Gamma models against the paper's worked example and against data
simulated from known parameters, which fitting must recover."""

import numpy as np
import pytest

from app.domain.insight.ltv import BgNbd, GammaGamma, fit_bgnbd, fit_gamma_gamma

# Fader, Hardie and Lee (2005), fitted to the CDNOW sample (weeks).
CDNOW = BgNbd(r=0.243, alpha=4.414, a=0.793, b=2.426)


def test_the_papers_worked_example() -> None:
    # Section 5 of the paper: a customer with 2 repeat purchases, the last at week 30.43 of
    # 38.86, is expected to make 1.226 purchases in the next 39 weeks.
    expected = CDNOW.expected_purchases(39, [2], [30.43], [38.86])
    assert expected[0] == pytest.approx(1.226, abs=5e-4)


def test_probability_alive_follows_the_formula() -> None:
    x, t_x, age = 2, 30.43, 38.86
    odds = (
        CDNOW.a / (CDNOW.b + x - 1) * ((CDNOW.alpha + age) / (CDNOW.alpha + t_x)) ** (CDNOW.r + x)
    )
    assert CDNOW.probability_alive([x], [t_x], [age])[0] == pytest.approx(1 / (1 + odds))
    # Without repeat purchases a customer is assumed alive; a long silence lowers the odds.
    assert CDNOW.probability_alive([0], [0], [30])[0] == 1.0
    assert CDNOW.probability_alive([5], [2], [38])[0] < CDNOW.probability_alive([5], [37], [38])[0]


def test_the_likelihood_of_a_customer_without_repeat_purchases() -> None:
    # With x = 0 only the first term remains: (alpha / (alpha + T))^r.
    value = CDNOW.log_likelihood([0], [0.0], [20.0])[0]
    assert value == pytest.approx(CDNOW.r * np.log(CDNOW.alpha / (CDNOW.alpha + 20.0)))


def _simulate_bgnbd(
    model: BgNbd, customers: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Repeat purchases of customers first buying at time 0 and watched for 20–52 weeks."""
    rates = rng.gamma(model.r, 1 / model.alpha, customers)
    dropouts = rng.beta(model.a, model.b, customers)
    ages = rng.uniform(20, 52, customers)
    xs, recencies = np.zeros(customers), np.zeros(customers)
    for i in range(customers):
        moment, count, last = 0.0, 0, 0.0
        while True:
            moment += rng.exponential(1 / rates[i])
            if moment > ages[i]:
                break
            count, last = count + 1, moment
            if rng.random() < dropouts[i]:
                break
        xs[i], recencies[i] = count, last
    return xs, recencies, ages


def test_fitting_recovers_the_parameters_of_simulated_customers() -> None:
    rng = np.random.default_rng(7)
    truth = BgNbd(r=0.5, alpha=4.0, a=0.8, b=2.5)
    x, t_x, age = _simulate_bgnbd(truth, 20_000, rng)
    fitted = fit_bgnbd(x, t_x, age)
    assert fitted.converged
    found = fitted.model
    assert found.r == pytest.approx(truth.r, rel=0.1)
    assert found.alpha == pytest.approx(truth.alpha, rel=0.15)
    assert found.a == pytest.approx(truth.a, rel=0.25)
    assert found.b == pytest.approx(truth.b, rel=0.3)
    # The fitted model predicts the simulated population's purchases.
    assert np.sum(found.expected_purchases(10, x, t_x, age)) == pytest.approx(
        np.sum(truth.expected_purchases(10, x, t_x, age)), rel=0.05
    )


def test_gamma_gamma_expected_spend_and_fit() -> None:
    model = GammaGamma(p=6.25, q=3.74, gamma=15.44)  # the note's CDNOW figures
    # Equation 5: p (gamma + x m) / (p x + q − 1).
    assert model.expected_spend([3], [40.0])[0] == pytest.approx(
        6.25 * (15.44 + 3 * 40.0) / (6.25 * 3 + 3.74 - 1)
    )
    assert model.population_mean == pytest.approx(6.25 * 15.44 / 2.74)
    rng = np.random.default_rng(11)
    customers = 20_000
    nus = rng.gamma(model.q, 1 / model.gamma, customers)
    orders = rng.integers(1, 8, customers)
    means = np.array(
        [rng.gamma(model.p, 1 / nu, n).mean() for nu, n in zip(nus, orders, strict=True)]
    )
    fitted = fit_gamma_gamma(orders, means).model
    assert fitted.population_mean == pytest.approx(model.population_mean, rel=0.05)
    assert fitted.p == pytest.approx(model.p, rel=0.15)
