'use strict';
// Fixture "big": result = a string of params.bytes "x" characters. Exported as `exports.default`
// (what TypeScript and Babel emit for `export default`).

exports.default = function big(params) {
  return 'x'.repeat(params.bytes);
};
