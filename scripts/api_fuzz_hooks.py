"""schemathesis hooks of scripts/api-fuzz (loaded with SCHEMATHESIS_HOOKS=api_fuzz_hooks).

A long poll (`GET /v1/jobs/{id}/result?wait=`) holds its answer up to `wait` seconds, 60 at most
as documented. In the stateful phase the fuzzer follows links to jobs that never end while it
runs (delayed, waiting on others, in a paused queue), and each such poll held the run for up to a
minute: the same seed took 19 s or 215 s. A valid `wait` above MAX_WAIT is sent as MAX_WAIT; the
values outside the documented range are sent as drawn (the daemon must refuse them), and long
waits themselves are tested in crates/server/tests (they end at the job's end or at `wait`).
"""

from typing import Any

import schemathesis

MAX_WAIT = 1.0


@schemathesis.hook
def before_call(ctx: Any, case: Any, **kwargs: Any) -> None:
    query = case.query
    if not case.operation.path.endswith("/result") or not isinstance(query, dict):
        return
    wait = query.get("wait")
    if isinstance(wait, bool) or not isinstance(wait, (int, float, str)):
        return
    try:
        seconds = float(wait)
    except ValueError:
        return
    if MAX_WAIT < seconds <= 60:
        query["wait"] = MAX_WAIT
