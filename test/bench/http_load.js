// Load generator for eventkit's HTTP intake (test/bench/http.sh; not CI).
//
//   node http_load.js <url> <write key> <clients> <file> [<file> ...]
//
// <clients> concurrent keep-alive connections (one request in flight each)
// POST the files (Segment batch envelopes) once each, in order, each file
// taken by the next free client.  Prints one JSON line: requests, events,
// seconds, events/s, p50/p99 request latency (ms), non-200 answers.
'use strict';

const fs = require('fs');
const http = require('http');

const [url, writeKey, clientsArg, ...files] = process.argv.slice(2);
if (!url || !writeKey || !clientsArg || files.length === 0) {
	console.error('usage: node http_load.js <url> <write key> <clients> <file> ...');
	process.exit(2);
}
const clients = Number(clientsArg);
const target = new URL(url);
const auth = 'Basic ' + Buffer.from(`${writeKey}:`).toString('base64');

// read (and count) everything before the clock starts
const bodies = files.map((f) => fs.readFileSync(f));
const counts = bodies.map((b) => JSON.parse(b).batch.length);

const latencies = [];
const failures = {};
let next = 0;

function post(agent, body) {
	return new Promise((resolve, reject) => {
		const started = process.hrtime.bigint();
		const req = http.request({
			host: target.hostname,
			port: target.port,
			path: target.pathname,
			method: 'POST',
			agent,
			headers: {
				'Content-Type': 'application/json',
				'Content-Length': body.length,
				Authorization: auth,
			},
		}, (res) => {
			res.resume();
			res.on('end', () => {
				latencies.push(Number(process.hrtime.bigint() - started) / 1e6);
				if (res.statusCode !== 200)
					failures[res.statusCode] = (failures[res.statusCode] || 0) + 1;
				resolve();
			});
		});
		req.on('error', reject);
		req.end(body);
	});
}

async function client() {
	const agent = new http.Agent({keepAlive: true, maxSockets: 1});
	while (next < bodies.length) {
		const i = next++;
		await post(agent, bodies[i]);
	}
	agent.destroy();
}

(async () => {
	const started = process.hrtime.bigint();
	await Promise.all(Array.from({length: clients}, client));
	const seconds = Number(process.hrtime.bigint() - started) / 1e9;
	const events = counts.reduce((a, b) => a + b, 0);
	latencies.sort((a, b) => a - b);
	const pct = (p) => latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))];
	console.log(JSON.stringify({
		requests: bodies.length, events, seconds: +seconds.toFixed(3),
		events_per_s: Math.round(events / seconds),
		p50_ms: +pct(0.50).toFixed(1), p99_ms: +pct(0.99).toFixed(1), failures,
	}));
})().catch((e) => {
	console.error(String(e));
	process.exit(1);
});
