"""Conformance fixture `fail_final`: fails with a non-retryable error named ValidationError whose
message is params.message (through ctx.fail, so `retry: false` reaches the wire)."""


class ValidationError(Exception):
    pass


def handle(params, ctx):
    ctx.fail(ValidationError(params["message"]), retry=False)
