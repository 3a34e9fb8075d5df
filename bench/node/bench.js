#!/usr/bin/env node
// The official MongoDB Node.js driver as a contender in mqc's benchmark (scripts/bench).
//
// N concurrent async loops, each doing one operation at a time (find {_id: k} by default), on a
// MongoClient whose pool holds as many connections as there are loops: the same shape as
// `mqload -c N` and bench/ceiling. Prints one JSON object with the keys mqload uses
// (throughput_ops_s, latency_us.{p50,p99}) and the process CPU over the measured window.
//
//   node bench.js --uri mongodb://127.0.0.1:PORT/ -c 16 -d 3 --warmup 1 [--op find|insert|ping] [--json FILE|-]
'use strict';

const fs = require('fs');
const { MongoClient } = require('mongodb');

function parseArgs(argv) {
  const o = { uri: 'mongodb://127.0.0.1:27017/', c: 1, d: 5, warmup: 1, op: 'find', json: '-', keys: 1000 };
  for (let i = 2; i < argv.length; i++) {
    const a = argv[i];
    const next = () => {
      if (i + 1 >= argv.length) throw new Error(`${a} needs a value`);
      return argv[++i];
    };
    if (a === '--uri') o.uri = next();
    else if (a === '-c' || a === '--concurrency') o.c = parseInt(next(), 10);
    else if (a === '-d' || a === '--duration') o.d = parseFloat(next());
    else if (a === '--warmup') o.warmup = parseFloat(next());
    else if (a === '--op') o.op = next();
    else if (a === '--json') o.json = next();
    else if (a === '--keys') o.keys = parseInt(next(), 10);
    else throw new Error(`unknown option ${a}`);
  }
  if (!(o.c >= 1) || !(o.d > 0) || !(o.warmup >= 0) || !['find', 'insert', 'ping'].includes(o.op)) {
    throw new Error('bad options: -c >= 1, -d > 0, --warmup >= 0, --op find|insert|ping');
  }
  return o;
}

function percentile(sorted, q) {
  if (sorted.length === 0) return 0;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[i];
}

async function main() {
  const o = parseArgs(process.argv);
  const client = new MongoClient(o.uri, {
    maxPoolSize: o.c,
    // Let the pool fill during the warm-up rather than two connections at a time.
    maxConnecting: Math.min(o.c, 64),
    serverSelectionTimeoutMS: 5000,
  });
  await client.connect();
  const db = client.db('bench');
  const coll = db.collection('bench');

  let key = 0;
  const ops = {
    find: () => coll.findOne({ _id: key++ % o.keys }),
    insert: () => coll.insertOne({ _id: key++, v: 'x' }),
    ping: () => db.command({ ping: 1 }),
  };
  const run = ops[o.op];

  const start = process.hrtime.bigint();
  const measureAt = start + BigInt(Math.round(o.warmup * 1e9));
  const end = measureAt + BigInt(Math.round(o.d * 1e9));
  let samples = new Float64Array(1 << 16);
  let n = 0;
  let errors = 0;
  let firstError = null;
  let cpu0 = null;
  let t0 = 0n;

  async function loop() {
    for (;;) {
      const t = process.hrtime.bigint();
      if (t >= end) return;
      if (cpu0 === null && t >= measureAt) {
        cpu0 = process.cpuUsage();
        t0 = t;
      }
      try {
        await run();
      } catch (e) {
        errors++;
        if (!firstError) firstError = e;
        continue;
      }
      if (cpu0 !== null) {
        const us = Number(process.hrtime.bigint() - t) / 1000;
        if (n === samples.length) {
          const bigger = new Float64Array(samples.length * 2);
          bigger.set(samples);
          samples = bigger;
        }
        samples[n++] = us;
      }
    }
  }
  await Promise.all(Array.from({ length: o.c }, loop));
  const t1 = process.hrtime.bigint();
  const cpu = process.cpuUsage(cpu0 || undefined);
  await client.close();

  const secs = Number(t1 - (t0 || start)) / 1e9;
  const sorted = samples.subarray(0, n).sort();
  let sum = 0;
  for (let i = 0; i < n; i++) sum += sorted[i];
  const r2 = (x) => Math.round(x * 100) / 100;
  const result = {
    tool: 'node',
    engine: 'node',
    driver: `mongodb ${require('mongodb/package.json').version}`,
    node: process.version,
    op: o.op,
    concurrency: o.c,
    duration_s: Math.round(secs * 1000) / 1000,
    ops: n,
    errors,
    throughput_ops_s: Math.round((n / secs) * 10) / 10,
    latency_us: {
      mean: r2(n ? sum / n : 0),
      p50: r2(percentile(sorted, 0.5)),
      p90: r2(percentile(sorted, 0.9)),
      p99: r2(percentile(sorted, 0.99)),
      p999: r2(percentile(sorted, 0.999)),
      max: r2(n ? sorted[n - 1] : 0),
    },
    cpu: {
      user_s: cpu.user / 1e6,
      sys_s: cpu.system / 1e6,
      us_per_op: n ? Math.round(((cpu.user + cpu.system) / n) * 1000) / 1000 : 0,
    },
  };
  if (firstError) result.first_error = String(firstError.message || firstError);
  const text = JSON.stringify(result) + '\n';
  if (o.json === '-') process.stdout.write(text);
  else fs.writeFileSync(o.json, text);
  return errors && !n ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (e) => {
    process.stderr.write(`node bench: ${e.stack || e}\n`);
    process.exit(1);
  },
);
