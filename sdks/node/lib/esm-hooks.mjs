// Resolve hook for ES job files (registered by lib/hooks.js with module.register): when a
// specifier such as `ee-core/message` does not resolve normally from the importing file, answer
// the SDK's compatible module instead. The real package always wins when it is installed.

const NOT_FOUND = new Set(['ERR_MODULE_NOT_FOUND', 'MODULE_NOT_FOUND', 'ERR_PACKAGE_PATH_NOT_EXPORTED']);
let fallbacks = Object.create(null);

export async function initialize(data) {
  fallbacks = Object.assign(Object.create(null), (data && data.fallbacks) || {});
}

export async function resolve(specifier, context, nextResolve) {
  if (!(specifier in fallbacks)) return nextResolve(specifier, context);
  try {
    return await nextResolve(specifier, context);
  } catch (e) {
    if (e && NOT_FOUND.has(e.code)) return { url: fallbacks[specifier], shortCircuit: true };
    throw e;
  }
}
