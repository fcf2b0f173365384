"""Conformance fixture `emit`: emits event params.name with data params.data and receiver
"job", then result null (an async handler)."""


async def handle(params, ctx):
    ctx.emit(params["name"], params.get("data"), receiver="job")
    return None
