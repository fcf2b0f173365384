// Keeps `params.mb` MiB of JavaScript heap alive in the worker after it answers.
const held = [];
module.exports = async (params) => {
  const n = ((params && params.mb) || 64) * 1024;
  const chunk = [];
  for (let i = 0; i < n; i++) chunk.push('x'.repeat(1000) + i);
  held.push(chunk);
  return process.pid;
};
