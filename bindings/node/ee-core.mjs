import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const eeCore = require('./lib/ee-core.js');

export default eeCore;
export const { ChildJob, ChildPoolJob, JobProcess, LoadBalancer, AlgorithmType } = eeCore;
