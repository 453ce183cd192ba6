// The bastion's profile restricted to some REST windows of a bench run, with CPU per request:
//   tsx bench/profile-windows.ts PROFILE.cpuprofile RUN.json [op] [concurrency]
// e.g. `... get 64` for the GET windows at concurrency 64 (every GET window when omitted).
import { readFileSync } from 'node:fs';
import { renderProfile, summariseProfile } from './lib/profile.js';

interface Window {
  op: string;
  concurrency: number;
  endpoint: string;
  requests: number;
  startUs: number;
  endUs: number;
  simCpuUsPerReq: number;
  /** The endpoint's own processes (the bastion, the node proxy, ...). */
  endpointCpuUsPerReq: number;
  clientCpuUsPerReq: number;
}

const [profile, run, op = 'get', concurrency] = process.argv.slice(2);
if (!profile || !run) throw new Error('usage: profile-windows.ts PROFILE RUN.json [op] [concurrency]');
const all = (JSON.parse(readFileSync(run, 'utf8')) as { raw: { rest: { windows: Window[] } } }).raw.rest.windows;
const chosen = all.filter((w) => w.op === op && (concurrency === undefined || w.concurrency === Number(concurrency)));
for (const w of chosen) console.log(`${w.endpoint} ${w.op} c=${w.concurrency}: ${w.requests} requests; CPU per request: client ${w.clientCpuUsPerReq} µs, sim ${w.simCpuUsPerReq} µs, ${w.endpoint} ${w.endpointCpuUsPerReq} µs (/proc)`);
const bastion = chosen.filter((w) => w.endpoint === 'bastion');
const summary = summariseProfile(profile, 30, bastion);
const requests = bastion.reduce((n, w) => n + w.requests, 0);
console.log(`bastion windows: ${requests} requests, profile busy ${((summary.busyMs * 1000) / Math.max(1, requests)).toFixed(0)} µs per request`);
console.log(renderProfile(summary));
