'use strict';
// Fixture "flow": flow control. params.busy true calls busy(), false calls ready() (the SDK's
// process-wide functions, as a load-process-manager worker does); result = params.busy.

const offload = require('offload-worker');

module.exports = async function flow(params) {
  if (params.busy) offload.busy();
  else offload.ready();
  return params.busy;
};
