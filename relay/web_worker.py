"""One Daphne web worker: `python -m relay.web_worker --fd N newapi_site.asgi:application`.

Daphne creates its Twisted asyncio loop at import time with `asyncio.new_event_loop()`, so
installing uvloop's policy first puts the whole worker (Twisted reactor included) on uvloop.
"""

from __future__ import annotations

import asyncio
import sys


def main() -> None:
    try:
        import uvloop
    except ImportError:  # uvloop is an optional speed-up
        pass
    else:
        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    from daphne.cli import CommandLineInterface

    sys.argv[0] = "daphne"
    CommandLineInterface.entrypoint()


if __name__ == "__main__":
    main()
