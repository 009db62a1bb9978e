// Sends one event of each Segment type (track, identify, page, screen, group,
// alias) through a real SDK to eventkit's HTTP intake, and waits until the
// SDK says they were delivered (retries included).
//
//   node sdk_send.js <segment|rudder> <base url> <write key> <run id> [name=value ...]
//
// Options: retries (SDK retries, 10), timeout (ms per HTTP request; segment
// only, as RudderStack does not retry a timeout), wait (ms for everything, 120000).
// Message ids are "<run id>-<type>"; every event carries the run id in its
// properties or traits.  Prints one JSON line (requests sent, statuses of
// the answers, errors) and exits 0 when every event was delivered, 1
// otherwise.
'use strict';

const [sdk, base, writeKey, run, ...rest] = process.argv.slice(2);
if (!sdk || !base || !writeKey || !run) {
	console.error('usage: node sdk_send.js <segment|rudder> <base url> <write key> <run id> [name=value ...]');
	process.exit(2);
}
const opts = {retries: 10, timeout: 0, wait: 120000};
for (const arg of rest) {
	const [name, value] = arg.split('=');
	opts[name] = Number(value);
}

const userId = `u-${run}`;
const events = [
	['track', {userId, event: 'Order Completed', properties: {run, revenue: 42.5, currency: 'EUR'}}],
	['identify', {userId, traits: {run, email: `${run}@example.com`, plan: 'pro'}}],
	['page', {userId, name: 'Home', properties: {run, path: '/'}}],
	['screen', {userId, name: 'Settings', properties: {run}}],
	['group', {userId, groupId: `g-${run}`, traits: {run, name: 'Acme'}}],
	['alias', {userId, previousId: `anon-${run}`}],
];

let requests = 0;
const statuses = [];
const errors = [];
let delivered = 0;

function finish() {
	const ok = delivered === events.length && errors.length === 0;
	console.log(JSON.stringify({sdk, run, delivered, requests, statuses, errors}));
	process.exit(ok ? 0 : 1);
}

setTimeout(() => {
	errors.push(`gave up after ${opts.wait} ms`);
	finish();
}, opts.wait).unref();

function callback(err) {
	if (err)
		errors.push(String(err && err.message ? err.message : err));
	else
		delivered++;
}

async function segment() {
	const {Analytics} = require('@segment/analytics-node');
	const analytics = new Analytics({
		writeKey,
		host: base,
		flushAt: events.length,
		flushInterval: 200,
		maxRetries: opts.retries,
		...(opts.timeout ? {httpRequestTimeout: opts.timeout} : {}),
	});
	analytics.on('http_request', () => requests++);
	analytics.on('http_response', (r) => statuses.push(r.status));
	analytics.on('error', (e) => errors.push(String(e && e.reason ? e.reason : e)));
	for (const [type, message] of events)
		analytics[type]({...message, messageId: `${run}-${type}`}, callback);
	await analytics.closeAndFlush({timeout: opts.wait});
	finish();
}

async function rudder() {
	const Analytics = require('@rudderstack/rudder-sdk-node');
	const axios = require('axios');
	const axiosInstance = axios.create();
	axiosInstance.interceptors.request.use((config) => { requests++; return config; });
	axiosInstance.interceptors.response.use(
		(r) => { statuses.push(r.status); return r; },
		(e) => { statuses.push(e.response ? e.response.status : e.code || String(e)); throw e; });
	const client = new Analytics(writeKey, {
		dataPlaneUrl: base,
		flushAt: events.length,
		flushInterval: 200,
		retryCount: opts.retries,
		logLevel: 'error',
		axiosInstance,
	});
	for (const [type, message] of events)
		client[type]({...message, messageId: `${run}-${type}`}, callback);
	// every callback has run once delivered events + errors = events
	const poll = setInterval(() => {
		if (delivered + errors.length >= events.length) {
			clearInterval(poll);
			finish();
		}
	}, 50);
}

(sdk === 'segment' ? segment() : sdk === 'rudder' ? rudder() : Promise.reject(new Error(`unknown sdk ${sdk}`)))
	.catch((e) => { errors.push(String(e)); finish(); });
