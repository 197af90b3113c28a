"""A rate-limited HTTP service: one RL.COST per request (cost from X-Cost,
default 1) on a token bucket per client (X-User, else the remote address).
429 with Retry-After when denied; RateLimit-Policy and RateLimit
(draft-ietf-httpapi-ratelimit-headers-11) on every reply.

    REDIS_URL=redis://127.0.0.1:6379 PORT=8080 .venv/bin/python app.py
"""
import json
import os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import redis

from limiter import Limiter, ceil_s

CAPACITY = int(os.environ.get("RL_CAPACITY", "10"))  # burst
REFILL = int(os.environ.get("RL_REFILL", "10"))  # tokens per period
PERIOD_MS = int(os.environ.get("RL_PERIOD_MS", "1000"))
# q: the bucket's capacity; w: seconds for an empty bucket to fill again.
POLICY = f'"default";q={CAPACITY}' + (
    f";w={ceil_s(-(-CAPACITY * PERIOD_MS // REFILL))}" if REFILL else "")

limiter = Limiter(redis.Redis.from_url(os.environ.get("REDIS_URL", "redis://127.0.0.1:6379")),
                  client_clock=os.environ.get("RL_CLIENT_CLOCK") == "1")


def rate_limited(handler):
    """Middleware: charges the client's bucket, then runs `handler` or answers 429."""
    def wrapped(self):
        client = self.headers.get("X-User") or self.client_address[0]
        cost = self.headers.get("X-Cost", "1")
        if not (cost.isascii() and cost.isdigit() and int(cost) < 2**63):
            return self.reply(400, {"error": "X-Cost must be a whole number below 2^63"}, {})
        try:
            allowed, limit, remaining, retry_ms, reset_ms = limiter.call(
                "RL.COST", [f"rl:{client}"], [CAPACITY, REFILL, PERIOD_MS, int(cost)])
        except redis.RedisError as e:  # Redis down, or a key of another type
            return self.reply(503, {"error": f"rate limiter unavailable: {e}"}, {})
        headers = {"RateLimit-Policy": POLICY,
                   "RateLimit": f'"default";r={remaining}'
                                + (f";t={ceil_s(reset_ms)}" if reset_ms >= 0 else ""),
                   "X-RateLimit-Backend": limiter.backend}
        if allowed:
            return handler(self, headers)
        if retry_ms < 0:  # the cost exceeds the capacity: waiting never helps
            return self.reply(413, {"error": "cost above the limit"}, headers)
        headers["Retry-After"] = str(ceil_s(retry_ms))
        return self.reply(429, {"error": "too many requests", "retry_after_ms": retry_ms}, headers)
    return wrapped


class Handler(BaseHTTPRequestHandler):
    def reply(self, status, body, headers):
        data = json.dumps(body).encode()
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    @rate_limited
    def do_GET(self, headers):
        self.reply(200, {"hello": self.headers.get("X-User") or self.client_address[0]}, headers)

    def log_message(self, *args):
        pass


if __name__ == "__main__":
    server = ThreadingHTTPServer(("127.0.0.1", int(os.environ.get("PORT", "8080"))), Handler)
    print(f"listening on http://127.0.0.1:{server.server_address[1]} backend={limiter.backend}",
          flush=True)
    server.serve_forever()
