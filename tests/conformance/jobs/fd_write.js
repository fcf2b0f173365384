'use strict';
// Fixture "fd_write" (docs/protocol.md §9): writes "<text> <index>\n" to each descriptor passed
// with the run (a net.Socket here) and ends it; result {fds: n}.

module.exports = {
  async handle(params, ctx) {
    const fds = ctx.fds;
    for (const [i, sock] of fds.entries()) {
      await new Promise((resolve) => sock.end(`${params.text} ${i}\n`, resolve));
      sock.destroy();
    }
    return { fds: fds.length };
  },
};
