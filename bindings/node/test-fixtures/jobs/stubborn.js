// Ignores cancel and SIGTERM: only SIGKILL ends it. Reports progress once it ignores SIGTERM.
module.exports = async (params, ctx) => {
  process.removeAllListeners('SIGTERM');
  process.on('SIGTERM', () => {});
  ctx.progress('ignoring SIGTERM');
  await new Promise(() => setInterval(() => {}, 1000));
};
