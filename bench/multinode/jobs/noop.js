// The benchmark's job: nothing but the round trip through the queue.
module.exports = async (p) => p.n;
