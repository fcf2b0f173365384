// Answers, then blocks its worker's event loop for `params.ms` (default a minute): the worker
// is stuck outside any job and answers no ping.
module.exports = async (params) => {
  setTimeout(() => {
    const end = Date.now() + ((params && params.ms) || 60000);
    while (Date.now() < end);
  }, 20);
  return process.pid;
};
