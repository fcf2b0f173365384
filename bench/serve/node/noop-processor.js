// BullMQ sandboxed processor: does nothing (the same no-op as jobs/noop.js).
module.exports = () => null;
