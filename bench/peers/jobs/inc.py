# offload Python pool job: x + 1.
def handle(params, ctx):
    return params["x"] + 1
