"""How often the dispatcher's loop runs a round: at once after a quiet spell, then at most once
per spacing however many commits wake it."""

import asyncio

from app.domain.webhook.dispatcher import Dispatcher


class _CountingDispatcher(Dispatcher):
    """The loop as it is, with rounds that only count themselves."""

    rounds = 0

    async def run_once(self) -> int:
        self.rounds += 1
        return 0


def _dispatcher(spacing: float) -> _CountingDispatcher:
    return _CountingDispatcher(
        None,  # type: ignore[arg-type]  # the counting rounds open no session
        allow_private=False,
        poll_seconds=10,
        round_spacing=spacing,
    )


async def test_a_stream_of_wake_ups_is_served_by_spaced_rounds() -> None:
    dispatcher, stop = _dispatcher(0.05), asyncio.Event()
    loop = asyncio.get_running_loop()
    rounds = asyncio.create_task(dispatcher._rounds(stop))
    started = loop.time()
    for _ in range(200):  # a commit every millisecond or so
        dispatcher.wake()
        await asyncio.sleep(0.001)
    elapsed = loop.time() - started
    stop.set()
    await rounds
    assert 2 <= dispatcher.rounds <= elapsed / 0.05 + 2


async def test_a_wake_up_after_a_quiet_spell_is_served_at_once() -> None:
    dispatcher, stop = _dispatcher(0.05), asyncio.Event()
    rounds = asyncio.create_task(dispatcher._rounds(stop))
    await asyncio.sleep(0.2)  # the first round ran, the loop idles (10 s poll)
    assert dispatcher.rounds == 1
    dispatcher.wake()
    await asyncio.sleep(0.02)
    assert dispatcher.rounds == 2
    stop.set()
    await rounds
