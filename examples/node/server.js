// A rate-limited HTTP service: one RL.TOKENBUCKET per request (COST from
// X-Cost, default 1) on a bucket per client (X-User, else the remote address).
// 429 with Retry-After when denied; RateLimit-Policy and RateLimit
// (draft-ietf-httpapi-ratelimit-headers-11) on every reply. Without the module
// it runs lua/token_bucket.lua: SCRIPT LOAD once, EVALSHA, reload on NOSCRIPT.
//
//   REDIS_URL=redis://127.0.0.1:6379 PORT=8080 node server.js
"use strict";
const fs = require("fs");
const http = require("http");
const path = require("path");
const Redis = require("ioredis");

const env = (name, fallback) => process.env[name] || fallback;
const CAPACITY = BigInt(env("RL_CAPACITY", "10")); // burst
const REFILL = BigInt(env("RL_REFILL", "10")); // tokens per period
const PERIOD_MS = BigInt(env("RL_PERIOD_MS", "1000"));
const CLIENT_CLOCK = env("RL_CLIENT_CLOCK", "") === "1"; // else the server's TIME
const SCRIPT = fs.readFileSync(
  path.join(env("RL_LUA_DIR", path.join(__dirname, "..", "..", "lua")), "token_bucket.lua"), "utf8");

// Milliseconds to whole seconds, rounded up: a client is never early.
const ceilS = (ms) => (BigInt(ms) + 999n) / 1000n;
// q: the bucket's capacity; w: seconds for an empty bucket to fill again.
const POLICY = `"default";q=${CAPACITY}` +
  (REFILL > 0n ? `;w=${ceilS((CAPACITY * PERIOD_MS + REFILL - 1n) / REFILL)}` : "");

const ARGS = [CAPACITY, REFILL, PERIOD_MS].map(String);
const redis = new Redis(env("REDIS_URL", "redis://127.0.0.1:6379"));
let backend, sha;

async function tokenBucket(key, cost) {
  const now = CLIENT_CLOCK ? String(Date.now()) : "";
  if (backend === "module") {
    try {
      return await redis.call("RL.TOKENBUCKET", key, ...ARGS, "COST", cost, ...(now ? ["AT", now] : []));
    } catch (err) {
      if (!/unknown command/i.test(err.message)) throw err;
      backend = "lua"; // e.g. failed over to a server without the module
      console.error("module gone: switching to lua");
    }
  }
  sha = sha || (await redis.script("LOAD", SCRIPT));
  try {
    return await redis.evalsha(sha, 1, key, ...ARGS, cost, now);
  } catch (err) {
    if (!err.message.startsWith("NOSCRIPT")) throw err;
    sha = await redis.script("LOAD", SCRIPT); // SCRIPT FLUSH, restart, failover
    return redis.evalsha(sha, 1, key, ...ARGS, cost, now);
  }
}

function send(res, status, headers, body) {
  const data = JSON.stringify(body);
  res.writeHead(status, { ...headers, "Content-Type": "application/json", "Content-Length": Buffer.byteLength(data) });
  res.end(data);
}

// Middleware: charges the client's bucket, then calls next() or answers 429.
function rateLimit(handler) {
  return async (req, res) => {
    const client = req.headers["x-user"] || req.socket.remoteAddress;
    const cost = req.headers["x-cost"] || "1";
    if (!/^[0-9]+$/.test(cost)) return send(res, 400, {}, { error: "X-Cost must be a whole number" });
    try {
      const [allowed, , remaining, retryMs, resetMs] = await tokenBucket(`rl:${client}`, cost);
      const headers = {
        "RateLimit-Policy": POLICY,
        RateLimit: `"default";r=${remaining}` + (resetMs >= 0 ? `;t=${ceilS(resetMs)}` : ""),
        "X-RateLimit-Backend": backend,
      };
      if (allowed) return handler(req, res, headers);
      if (retryMs < 0) return send(res, 413, headers, { error: "cost above the limit" });
      headers["Retry-After"] = String(ceilS(retryMs));
      send(res, 429, headers, { error: "too many requests", retry_after_ms: retryMs });
    } catch (err) {
      send(res, 503, {}, { error: err.message });
    }
  };
}

const app = rateLimit((req, res, headers) =>
  send(res, 200, headers, { hello: req.headers["x-user"] || req.socket.remoteAddress }));

(async () => {
  const info = await redis.call("COMMAND", "INFO", "rl.tokenbucket"); // [null] without the module
  backend = info[0] ? "module" : "lua";
  const server = http.createServer(app).listen(Number(env("PORT", "8080")), "127.0.0.1", () =>
    console.log(`listening on http://127.0.0.1:${server.address().port} backend=${backend}`));
})().catch((err) => {
  console.error(err);
  process.exit(1);
});
