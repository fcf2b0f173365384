// Keeps a core busy for `params.ms` (default 2 s), then answers its pid.
module.exports = async (params) => {
  const end = Date.now() + ((params && params.ms) || 2000);
  while (Date.now() < end);
  return process.pid;
};
