# -*- coding: utf-8 -*-
"""3.x only (async def): a coroutine whose frame is on the stack while a
plain function it calls blocks in time.sleep.  Imported by threads.py."""
import asyncio
import time


def blocking_in_coro(ready):
    time.sleep(ready('coroutine'))  # @coro-sleep


async def inner_coro(ready):
    blocking_in_coro(ready)  # @coro-inner-call


async def outer_coro(ready):
    await inner_coro(ready)  # @coro-await


def run_coroutine_thread(ready):
    # No asyncio.run on 3.6: drive a private loop by hand.
    loop = asyncio.new_event_loop()
    loop.run_until_complete(outer_coro(ready))  # @coro-run
