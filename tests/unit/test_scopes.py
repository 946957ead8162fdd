import pytest

from app.domain.access.scopes import Scope, grants


@pytest.mark.parametrize(
    ("held", "required", "granted"),
    [
        ({"admin"}, Scope.CUSTOMERS_WRITE, True),
        ({"customers:read"}, Scope.CUSTOMERS_READ, True),
        ({"customers:write"}, Scope.CUSTOMERS_READ, True),
        ({"customers:read"}, Scope.CUSTOMERS_WRITE, False),
        ({"deals:write"}, Scope.CUSTOMERS_READ, False),
        ({"webhooks:manage"}, Scope.ADMIN, False),
        (set(), Scope.USERS_READ, False),
    ],
)
def test_grants(held: set[str], required: Scope, granted: bool) -> None:
    assert grants(frozenset(held), required) is granted
