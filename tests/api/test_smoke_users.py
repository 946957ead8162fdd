from httpx import AsyncClient

from tests.conftest import Tenant


async def test_create_and_get_user(client: AsyncClient, tenant: Tenant) -> None:
    created = await client.post(
        "/v1/users",
        json={"name": "佐藤 花子", "email": "Hanako@Example.jp", "role": "sales"},
        headers=tenant.headers,
    )
    assert created.status_code == 201, created.text
    fetched = await client.get(created.headers["Location"], headers=tenant.headers)
    assert fetched.json()["email"] == "hanako@example.jp"
