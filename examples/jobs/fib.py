"""A CPU-heavy Python job: the n-th Fibonacci number, the slow way, with progress."""


def fib(n):
    return n if n < 2 else fib(n - 1) + fib(n - 2)


def handle(params, ctx):
    n = int((params or {}).get("n", 25))
    results = []
    for i in range(n + 1):
        ctx.check_cancelled()
        results.append(fib(i))
        ctx.progress({"done": i + 1, "total": n + 1})
    return {"n": n, "fib": results[-1]}
