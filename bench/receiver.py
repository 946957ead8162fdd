"""A webhook receiver for benchmarks, run as its own process: answers every POST with 200 at
once (HTTP/1.1 keep-alive), notes when each arrived and for which customer, and writes those
notes as JSON to `--out` when it is stopped with SIGTERM. `GET /count` tells how many arrived."""

import argparse
import asyncio
import json
import signal
import time
from pathlib import Path

from bench.loadgen import LOOPBACK

OK = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"


class Receiver:
    def __init__(self) -> None:
        self.arrivals: list[tuple[float, str]] = []  # (Unix time, data.id of the event)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                arrived = time.time()
                request_line, _, rest = head.decode("latin-1").partition("\r\n")
                length = 0
                for line in rest.split("\r\n"):
                    name, _, value = line.partition(":")
                    if name.strip().lower() == "content-length":
                        length = int(value)
                body = await reader.readexactly(length)
                if request_line.startswith("GET /count"):
                    count = str(len(self.arrivals)).encode()
                    writer.write(
                        b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n%s" % (len(count), count)
                    )
                else:
                    self.arrivals.append((arrived, json.loads(body)["data"]["id"]))
                    writer.write(OK)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


async def serve(port: int) -> list[tuple[float, str]]:
    receiver = Receiver()
    server = await asyncio.start_server(receiver.handle, LOOPBACK, port, backlog=1024)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    async with server:
        await stop.wait()
    return receiver.arrivals


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    arrivals = asyncio.run(serve(args.port))
    Path(args.out).write_text(json.dumps(arrivals), encoding="utf-8")


if __name__ == "__main__":
    main()
