// offload Node pool job: x + 1.
module.exports = (params) => params.x + 1;
