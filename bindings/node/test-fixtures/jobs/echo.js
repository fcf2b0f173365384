// Progress, an event for the manager, then its params back.
module.exports = async (params, ctx) => {
  ctx.progress({ step: 1 });
  ctx.progress({ step: 2 });
  ctx.emit('echoed', { n: params && params.n }, 'job');
  return params;
};
