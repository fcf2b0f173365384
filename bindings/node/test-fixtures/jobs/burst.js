// `n` named events as fast as they can be sent, then `n` (a job streaming rows as events).
module.exports = async (params, ctx) => {
  for (let i = 0; i < params.n; i++) ctx.emit('row', { i }, 'all');
  return params.n;
};
