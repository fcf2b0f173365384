'use strict';
// Compatible stand-in for ee-core's `ee-core/jobs/baseJobClass` (used when ee-core is not
// installed next to the job): an empty base class, like ee-core's.

class BaseJobClass {
  // eslint-disable-next-line no-unused-vars
  constructor(params = {}) {}
}

module.exports = BaseJobClass;
