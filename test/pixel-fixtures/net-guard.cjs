// Preloaded (NODE_OPTIONS=--require) into the process and into every worker thread: any attempt to
// reach the network is refused and logged to $NET_GUARD_LOG, so a test can prove none was made.
const fs = require('node:fs');
const net = require('node:net');
const dns = require('node:dns');
const http = require('node:http');
const https = require('node:https');
const { threadId } = require('node:worker_threads');
const log = process.env.NET_GUARD_LOG;
const refuse = (what) => {
  if (log) fs.appendFileSync(log, `thread ${threadId}: ${what}\n`);
  throw new Error(`network access refused by the test guard: ${what}`);
};
net.Socket.prototype.connect = function () { refuse('net.connect'); };
dns.lookup = function () { refuse('dns.lookup'); };
dns.promises.lookup = async function () { refuse('dns.promises.lookup'); };
http.request = function () { refuse('http.request'); };
http.get = function () { refuse('http.get'); };
https.request = function () { refuse('https.request'); };
https.get = function () { refuse('https.get'); };
globalThis.fetch = async function (url) { refuse(`fetch ${String(url).slice(0, 80)}`); };
