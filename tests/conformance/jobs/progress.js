'use strict';
// Fixture "progress": progress {i} for i in 0..params.count, in order, then result params.count.
// An object with handle().

module.exports = {
  async handle(params, ctx) {
    for (let i = 0; i < params.count; i++) ctx.progress({ i });
    return params.count;
  },
};
