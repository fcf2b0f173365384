// The chaos run's job. It proves three things from the outside, through files in `params.dir`:
// - no two runs of one job overlap: a run takes `running/<tag>` (its pid inside) with an
//   exclusive create; a lock left by a run that is dead (killed) is taken over, a lock whose
//   holder is alive is an overlap and is written to `overlaps/`;
// - how many runs started: one line per run in `runs/<tag>`;
// - containment: with `spawn`, it starts a grandchild that leaves the process group (setsid),
//   ignores SIGTERM and, with `scrub`, drops its environment (no offload markers): the run's
//   folder is on its command line so the checker can find it in /proc.
const fs = require('fs');
const path = require('path');
const { spawn } = require('child_process');

function alive(pid) {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

function lock(dir, tag) {
  const file = path.join(dir, 'running', tag);
  for (let i = 0; i < 3; i++) {
    try {
      fs.writeFileSync(file, String(process.pid), { flag: 'wx' });
      return file;
    } catch (e) {
      if (e.code !== 'EEXIST') throw e;
      const holder = Number(fs.readFileSync(file, 'utf8') || 0);
      if (holder && holder !== process.pid && alive(holder)) {
        fs.writeFileSync(path.join(dir, 'overlaps', `${tag}.${process.pid}`), `${holder}\n`);
        return null;
      }
      fs.rmSync(file, { force: true }); // a dead run's lock
    }
  }
  return null;
}

module.exports = async function work(params, ctx) {
  const { dir, tag, ms = 0, fail = false, spawn: leave = false, scrub = false } = params;
  fs.appendFileSync(path.join(dir, 'runs', tag), `${process.pid}\n`);
  const held = lock(dir, tag);
  try {
    if (leave) {
      const script = `trap "" TERM; sleep 600; : ${dir}`;
      const argv = scrub ? ['-i', 'setsid', 'sh', '-c', script] : ['setsid', 'sh', '-c', script];
      spawn(scrub ? 'env' : argv.shift(), argv, { detached: true, stdio: 'ignore' }).unref();
    }
    const steps = 4;
    for (let i = 1; i <= steps; i++) {
      await new Promise((r) => setTimeout(r, ms / steps));
      ctx.progress({ done: i, total: steps });
    }
    if (fail) throw new Error(`chaos: ${tag} fails on purpose`);
    return { tag };
  } finally {
    if (held) fs.rmSync(held, { force: true });
  }
};
