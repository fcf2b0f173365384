// Allocates until its memory limit stops it.
module.exports = async () => {
  const keep = [];
  for (;;) keep.push(Buffer.alloc(16 * 1024 * 1024, 1));
};
