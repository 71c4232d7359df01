// BullMQ 5 baseline for `onomancer bench queue`: the same shape of run on the same Redis.
// Enqueue N no-op jobs with addBulk in batches of 1000, then drain them with one Worker of the given
// concurrency; jobs/s = N / (time from the worker's start until every job has completed).
// Completed jobs are kept (BullMQ's default), as Onomancer keeps every job's status hash.
// Usage: node bench.mjs [jobs] [concurrency...]   (REDIS_URL, default redis://127.0.0.1:6379)
// Keys live under a prefix of their own and are obliterated afterwards.
import { Queue, Worker } from "bullmq";

const redisUrl = new URL(process.env.REDIS_URL ?? "redis://127.0.0.1:6379");
const connection = { host: redisUrl.hostname, port: Number(redisUrl.port || 6379), maxRetriesPerRequest: null };
const jobs = Number(process.argv[2] ?? 100000);
const concurrencies = process.argv.slice(3).map(Number);
if (concurrencies.length === 0) concurrencies.push(50, 200, 500, 1000);

async function run(concurrency) {
  const prefix = `bullbench-${process.pid}-${concurrency}`;
  const queue = new Queue("noop", { connection, prefix });
  const enqStart = performance.now();
  for (let i = 0; i < jobs; i += 1000) {
    const n = Math.min(1000, jobs - i);
    await queue.addBulk(Array.from({ length: n }, (_, k) => ({ name: "noop", data: { i: i + k } })));
  }
  const enqueuePerS = jobs / ((performance.now() - enqStart) / 1000);
  let done = 0;
  let finish;
  const finished = new Promise((resolve) => (finish = resolve));
  const start = performance.now();
  const worker = new Worker("noop", async () => {}, { connection, prefix, concurrency, autorun: false });
  worker.on("completed", () => {
    done += 1;
    if (done === jobs) finish();
  });
  worker.run();
  await finished;
  const seconds = (performance.now() - start) / 1000;
  await worker.close();
  await queue.obliterate({ force: true });
  await queue.close();
  return { system: "bullmq", version: "5.81.5", jobs, concurrency, jobs_per_s: Math.round(jobs / seconds), enqueue_per_s: Math.round(enqueuePerS) };
}

for (const c of concurrencies) {
  console.log(JSON.stringify(await run(c)));
}
process.exit(0);
