// The soak's steady load: a few steps with progress, a few log lines on stdout and stderr,
// and a failure when asked (`fail: true`), so that the dashboard shows dead jobs and retries.
module.exports = async function work(params, ctx) {
  const steps = Math.max(1, Math.min(Number((params && params.steps) || 5), 50));
  for (let done = 1; done <= steps; done++) {
    await new Promise((resolve) => setTimeout(resolve, 50));
    ctx.progress({ done, total: steps });
    console.log(`step ${done} of ${steps}`);
  }
  console.error('a line on stderr');
  if (params && params.fail) throw new Error(`asked to fail after ${steps} steps`);
  return { steps };
};
