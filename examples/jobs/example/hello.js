// ee-core's demo helper (electron/jobs/example/hello.js).
const { logger } = require('ee-core/log');

exports.welcome = function () {
  logger.info('[child-process] [jobs/example/hello] welcome !');
};
