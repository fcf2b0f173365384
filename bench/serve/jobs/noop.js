// offload Node pool job: does nothing.
module.exports = () => null;
