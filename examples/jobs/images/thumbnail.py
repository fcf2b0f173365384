"""A Python job in a sub-folder: run it as `images/thumbnail`."""


def handle(params, ctx):
    width = int(params.get("width", 640))
    height = int(params.get("height", 480))
    scale = min(160 / width, 160 / height)
    ctx.emit("thumbnail-size", {"width": round(width * scale), "height": round(height * scale)})
    return {"width": round(width * scale), "height": round(height * scale)}
