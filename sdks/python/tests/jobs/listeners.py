"""Registers event listeners when first loaded; handle() reports what they saw."""

import asyncio

import offload_worker

seen = {}


@offload_worker.on_event("config")
def on_config(data):
    seen["config"] = data


async def on_slow(data):
    await asyncio.sleep(0.2)
    seen["slow"] = data


offload_worker.on_event("slow", on_slow)


@offload_worker.on_event("broken")
def on_broken(data):
    raise RuntimeError("listener failed on purpose")


@offload_worker.on_event("relay")
def on_relay(data):
    offload_worker.emit("relayed", data, receiver="task")


def handle(params, ctx):
    return seen
