// Dies from a signal nobody sent it, before answering.
module.exports = async () => {
  process.kill(process.pid, 'SIGSEGV');
  await new Promise(() => {});
};
