// offload Node pool job: busy-waits 1 ms (no sleep), returns x.
module.exports = (params) => {
  const end = process.hrtime.bigint() + 1000000n;
  while (process.hrtime.bigint() < end);
  return params.x;
};
