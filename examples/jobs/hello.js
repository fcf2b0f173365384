// A Node job: a function export. `ctx.progress()` drives the CLI's progress bar.
module.exports = async function hello(params, ctx) {
  const name = (params && params.name) || 'world';
  const steps = (params && params.steps) || 5;
  for (let done = 1; done <= steps; done++) {
    await new Promise((resolve) => setTimeout(resolve, 40));
    ctx.progress({ done, total: steps });
  }
  console.log(`greeted ${name}`); // stdout is the job's log, not its result
  return { greeting: `Hello, ${name}!`, pid: process.pid };
};
