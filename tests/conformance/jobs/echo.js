'use strict';
// Fixture "echo": result = params. A class (ee-core's job shape): the runner makes a fresh
// instance per job and calls handle(); under ee-core's legacy run message it gets
// new Echo(...jobParams) and handle(...jobParams), so handle's first argument is params either way.

class Echo {
  handle(params) {
    return params;
  }
}

module.exports = Echo;
