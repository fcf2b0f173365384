// The job whose page the soak keeps open: runs `seconds`, reporting progress every second;
// prints a line a second for its first `lines` seconds only, so that its page's log (which
// the page shows live) stops growing and what still grows afterwards is the page's own.
module.exports = async function long(params, ctx) {
  const seconds = Math.max(1, Math.min(Number((params && params.seconds) || 60), 6 * 3600));
  const lines = Math.max(0, Math.min(Number((params && params.lines) || 60), seconds));
  for (let s = 1; s <= seconds; s++) {
    await new Promise((resolve) => setTimeout(resolve, 1000));
    if (ctx.signal.aborted) throw ctx.signal.reason;
    ctx.progress({ done: s, total: seconds });
    if (s <= lines) console.log(`second ${s} of ${seconds}`);
  }
  return { seconds };
};
