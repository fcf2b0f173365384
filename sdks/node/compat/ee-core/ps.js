'use strict';
// Compatible stand-in for ee-core's `ee-core/ps` (used when ee-core is not installed next to the
// job): the same functions, answering for a child process run by offload. Directories come from
// ee-core's EE_* variables when set, else from sane defaults (the working directory, the home
// directory), so that path.join() on them never throws.

const os = require('node:os');
const path = require('node:path');
const state = require('../../lib/state');

// Loaded: the job uses ee-core, so its ChildJob runs follow ee-core's lifecycle (lib/lifecycle.js).
state.eeCore = true;

const env = process.env;

/** ee-core passes {"type":"childJob"|"childPoolJob"} as argv[2]; offload pools may say
 * OFFLOAD_POOL=1. Otherwise a worker counts as a ChildJob. */
function jobType() {
  try {
    const arg = JSON.parse(process.argv[2]);
    if (arg && (arg.type === 'childJob' || arg.type === 'childPoolJob')) return arg.type;
  } catch {
    // not ee-core's argument
  }
  return env.OFFLOAD_POOL === '1' ? 'childPoolJob' : 'childJob';
}

function allEnv() {
  return process.env;
}
function currentEnv() {
  return env.EE_ENV || env.EE_SERVER_ENV || 'prod';
}
function isProd() {
  return currentEnv() === 'prod';
}
function isDev() {
  const e = env.EE_ENV || env.EE_SERVER_ENV || env.NODE_ENV;
  return e === 'dev' || e === 'development' || e === 'local';
}
function isRenderer() {
  return false;
}
function isMain() {
  return false;
}
function isForkedChild() {
  return true;
}
function processType() {
  return 'child';
}
function appName() {
  return env.EE_APP_NAME || 'offload';
}
function appVersion() {
  return env.EE_APP_VERSION || '';
}
function getBaseDir() {
  return env.EE_BASE_DIR || process.cwd();
}
function getElectronDir() {
  return env.EE_ELECTRON_DIR || path.join(getBaseDir(), 'electron');
}
function getUserHomeDir() {
  return env.EE_USER_HOME || os.homedir();
}
function getUserHomeAppDir() {
  return path.join(getUserHomeDir(), appName());
}
function getUserHomeHiddenAppDir() {
  return path.join(getUserHomeDir(), `.${appName()}`);
}
function getAppUserDataDir() {
  return env.EE_APP_USER_DATA || getUserHomeHiddenAppDir();
}
function getRootDir() {
  return isDev() ? getBaseDir() : getAppUserDataDir();
}
function getDataDir() {
  return path.join(isDev() ? getBaseDir() : getUserHomeHiddenAppDir(), 'data');
}
function getLogDir() {
  return path.join(isDev() ? getBaseDir() : getUserHomeHiddenAppDir(), 'logs');
}
function getBundleDir(basePath) {
  return path.join(basePath || process.cwd(), 'public', 'electron');
}
function getPublicDir() {
  return path.join(getBaseDir(), 'public');
}
function getExecDir() {
  return env.EE_EXEC_DIR || getBaseDir();
}
function isPackaged() {
  return env.EE_IS_PACKAGED === 'true';
}
function isEncrypted() {
  return env.EE_IS_ENCRYPTED === 'true';
}
function isHotReload() {
  return env.HOT_RELOAD === 'true';
}
function getExtraResourcesDir() {
  const execDir = getExecDir();
  if (!isPackaged()) return path.join(execDir, 'build', 'extraResources');
  if (process.platform === 'darwin') return path.join(execDir, '..', 'Resources', 'extraResources');
  return path.join(execDir, 'resources', 'extraResources');
}
function getSocketPort() {
  return parseInt(env.EE_SOCKET_PORT, 10) || 0;
}
function getHttpPort() {
  return parseInt(env.EE_HTTP_PORT, 10) || 0;
}
function getMainPort() {
  return parseInt(env.EE_MAIN_PORT, 10) || 0;
}
/** Exit the process; frames the job already queued (its result, its events) are written first. */
function exit(code = 0) {
  if (state.worker) return state.worker.exit(code);
  return process.exit(code);
}
function makeMessage(msg = {}) {
  return Object.assign({ channel: '', event: '', data: {} }, msg);
}
function isChildJob() {
  return jobType() === 'childJob';
}
function isChildPoolJob() {
  return jobType() === 'childPoolJob';
}
/** ee-core: exit only a ChildJob's process (a pool's stays for the next job). */
function exitChildJob(code = 0) {
  if (isChildJob()) return exit(code);
  return undefined;
}
function getArgumentByName(name) {
  const prefix = `--${name}=`;
  for (const item of process.argv) {
    if (item.startsWith(prefix)) return item.slice(prefix.length);
  }
  return undefined;
}

// ee-core 2/3 names kept by older job files.
function initMode(mode) {
  if (env.EE_MODE === undefined) env.EE_MODE = mode || 'framework';
  return env.EE_MODE;
}
function mode() {
  return env.EE_MODE;
}
function verifyMode(m) {
  return m === 'framework' || m === 'module';
}
function isFrameworkMode() {
  return env.EE_MODE === 'framework';
}
function isModuleMode() {
  return env.EE_MODE === 'module';
}
function getHomeDir() {
  return env.EE_HOME || getBaseDir();
}
function getStorageDir() {
  return path.join(getRootDir(), 'data');
}
function getEncryptDir(basePath) {
  return getBundleDir(basePath);
}
function getUserHomeConfigDir() {
  return path.join(getUserHomeDir(), '.config', appName());
}
function getUserHomeAppFilePath() {
  return path.join(getUserHomeConfigDir(), 'app.json');
}

// One `exports.name = name` per function, so that ES job files can import them by name.
exports.allEnv = allEnv;
exports.env = currentEnv;
exports.getEnv = currentEnv;
exports.isProd = isProd;
exports.isDev = isDev;
exports.isRenderer = isRenderer;
exports.isMain = isMain;
exports.isForkedChild = isForkedChild;
exports.processType = processType;
exports.appName = appName;
exports.appVersion = appVersion;
exports.getDataDir = getDataDir;
exports.getLogDir = getLogDir;
exports.getBundleDir = getBundleDir;
exports.getRootDir = getRootDir;
exports.getBaseDir = getBaseDir;
exports.getElectronDir = getElectronDir;
exports.getPublicDir = getPublicDir;
exports.getExtraResourcesDir = getExtraResourcesDir;
exports.getAppUserDataDir = getAppUserDataDir;
exports.getExecDir = getExecDir;
exports.getUserHomeDir = getUserHomeDir;
exports.getUserHomeAppDir = getUserHomeAppDir;
exports.getUserHomeHiddenAppDir = getUserHomeHiddenAppDir;
exports.getSocketPort = getSocketPort;
exports.getHttpPort = getHttpPort;
exports.getMainPort = getMainPort;
exports.isPackaged = isPackaged;
exports.isEncrypted = isEncrypted;
exports.isHotReload = isHotReload;
exports.exit = exit;
exports.makeMessage = makeMessage;
exports.exitChildJob = exitChildJob;
exports.isChildJob = isChildJob;
exports.isChildPoolJob = isChildPoolJob;
exports.getArgumentByName = getArgumentByName;
exports.initMode = initMode;
exports.mode = mode;
exports.verifyMode = verifyMode;
exports.isFrameworkMode = isFrameworkMode;
exports.isModuleMode = isModuleMode;
exports.getHomeDir = getHomeDir;
exports.getStorageDir = getStorageDir;
exports.getEncryptDir = getEncryptDir;
exports.getUserHomeConfigDir = getUserHomeConfigDir;
exports.getUserHomeAppFilePath = getUserHomeAppFilePath;
