"""Conformance fixture `flow`: flow control. params.busy true calls busy(), false calls ready();
result = params.busy."""

import offload_worker


def handle(params, ctx):
    if params["busy"]:
        offload_worker.busy()
    else:
        offload_worker.ready()
    return params["busy"]
