import pytest

from app.core.money import CURRENCY_EXPONENTS, is_currency


@pytest.mark.parametrize(("code", "exponent"), [("JPY", 0), ("USD", 2), ("EUR", 2), ("KWD", 3)])
def test_minor_units(code: str, exponent: int) -> None:
    assert is_currency(code)
    assert CURRENCY_EXPONENTS[code] == exponent


@pytest.mark.parametrize("code", ["jpy", "YEN", "XXX", "", "JP"])
def test_non_currencies(code: str) -> None:
    assert not is_currency(code)
