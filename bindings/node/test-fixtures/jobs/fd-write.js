// Writes `params.text` and its pid to the socket passed with the run, then ends it.
module.exports = async (params, ctx) => {
  const [sock] = ctx.fds;
  await new Promise((resolve, reject) => sock.end(`${params.text} from ${process.pid}`, (e) => (e ? reject(e) : resolve())));
  return ctx.fds.length;
};
