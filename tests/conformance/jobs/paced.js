'use strict';
// Fixture "paced": params.count progress frames of params.bytes each; with params.paced, each
// awaits ctx.sent(). Returns the process's peak resident size before and after, in KiB, and
// whether the SDK runs on its process.send fallback (Node started with --pending-deprecation).

module.exports = {
  async handle(params, ctx) {
    const before = process.resourceUsage().maxRSS;
    const pad = 'x'.repeat(params.bytes);
    for (let i = 0; i < params.count; i++) {
      ctx.progress({ i, pad });
      if (params.paced) await ctx.sent();
    }
    const fallback = /--pending-deprecation/.test(process.env.NODE_OPTIONS || '');
    return { before, peak: process.resourceUsage().maxRSS, fallback };
  },
};
