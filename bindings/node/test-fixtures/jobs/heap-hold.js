// Keeps `params.mb` MiB of JavaScript heap alive in the worker after it answers: arrays of
// doubles (8 bytes each, stored in the array itself, on V8's heap). Strings built by
// concatenation would not do: V8 keeps them as ropes over one shared piece, and 64 "MiB" of
// them held about 33 MB, at the edge of a 32 MiB recycle threshold.
const held = [];
const PER_MIB = (1024 * 1024) / 8;
module.exports = async (params) => {
  const mb = (params && params.mb) || 64;
  for (let k = 0; k < mb; k++) {
    const chunk = new Array(PER_MIB);
    for (let i = 0; i < PER_MIB; i++) chunk[i] = k + i + 0.5;
    held.push(chunk);
  }
  return process.pid;
};
