"""The scenarios: what each sends to our app and to the bare baseline, and the ratio it must reach.

A new scenario (lists, creates, event ingest) is one `register(Scenario(...))` with two request
builders; the runner, load generator and table need no change. Builders get the seeded fixture and
a seeded random generator, and return a function producing one request per call, so writes can make
every request unique.
"""

import random
from collections.abc import Callable
from dataclasses import dataclass

from bench.database import Fixture

RequestSource = Callable[[], "Request"]
RequestBuilder = Callable[[Fixture, random.Random], RequestSource]


@dataclass(frozen=True, slots=True)
class Request:
    method: str
    path: str
    body: bytes | None = None


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    summary: str
    ours: RequestBuilder  # sent with the fixture's API key
    bare: RequestBuilder  # sent to bench/bare_app.py, without credentials
    expected_status: int = 200
    # The least acceptable (our requests/s) / (bare requests/s), from DESIGN §13.
    min_ratio: float = 0.6


SCENARIOS: dict[str, Scenario] = {}


def register(scenario: Scenario) -> None:
    if scenario.name in SCENARIOS:
        raise ValueError(f"scenario {scenario.name!r} is registered twice")
    SCENARIOS[scenario.name] = scenario


def get_random_user(prefix: str) -> RequestBuilder:
    """GET `prefix`/{id} for a uniformly random seeded user."""

    def build(fixture: Fixture, rng: random.Random) -> RequestSource:
        requests = [Request("GET", f"{prefix}/{user_id}") for user_id in fixture.user_ids]
        return lambda: rng.choice(requests)

    return build


register(
    Scenario(
        name="users.get",
        # Stands in for GET /v1/customers/{id} (DESIGN §13) until customers exist: the same
        # path through auth, middleware, a workspace-scoped primary-key read and a response model.
        summary="GET /v1/users/{id}, a random one of the seeded users",
        ours=get_random_user("/v1/users"),
        bare=get_random_user("/users"),
    )
)
