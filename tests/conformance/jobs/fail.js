'use strict';
// Fixture "fail": throws an error whose message is params.message. A plain function export.

module.exports = function fail(params) {
  throw new Error(params && params.message);
};
