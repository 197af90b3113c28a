"""An LLM gateway. One RL.ALL per request admits it against three limiters at
once, or charges none of them:
  - the user's request rate (TOKENBUCKET),
  - a reservation of the request's max_tokens on the user's token budget (RESERVE),
  - a concurrency slot (ACQUIRE).
Then it calls the model (a stand-in here), settles the reservation with the
tokens really used (RL.SETTLE, or RL.CANCEL when the model failed) and releases
the slot (RL.RELEASE). A gateway that dies in between leaves the reservation
charged at max_tokens and the slot taken, both until their lease ends.

    REDIS_URL=redis://127.0.0.1:6379 PORT=8081 .venv/bin/python llm_gateway.py
    curl -i -H 'X-User: alice' -d '{"prompt": "hello there", "max_tokens": 64}' \\
        http://127.0.0.1:8081/v1/completions
"""
import json
import os
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import redis

from limiter import Limiter, ceil_s


def env(name, default):
    return int(os.environ.get(name, default))


RATE = [env("RL_RATE_CAPACITY", 10), env("RL_RATE_REFILL", 1), env("RL_RATE_PERIOD_MS", 1000)]
TOKENS = [env("RL_TOKENS_CAPACITY", 100000), env("RL_TOKENS_REFILL", 100000),
          env("RL_TOKENS_PERIOD_MS", 60000)]
SLOTS = env("RL_SLOTS", 5)
LEASE_MS = env("RL_LEASE_MS", 120000)  # longer than the slowest model call
NAMES = ["rate", "tokens", "concurrency"]


def window(capacity, refill, period_ms):
    return f";w={ceil_s(-(-capacity * period_ms // refill))}" if refill else ""


# The token budget's unit is LLM tokens, which the draft's unit registry lacks: the name says it.
POLICY = ", ".join([f'"rate";q={RATE[0]}{window(*RATE)}', f'"tokens";q={TOKENS[0]}{window(*TOKENS)}',
                    f'"concurrency";q={SLOTS};qu="concurrent-requests"'])

limiter = Limiter(redis.Redis.from_url(os.environ.get("REDIS_URL", "redis://127.0.0.1:6379")),
                  client_clock=os.environ.get("RL_CLIENT_CLOCK") == "1")


def model(prompt, max_tokens, delay_ms=0):
    """Stand-in for the model: echoes the prompt, reports its usage. delay_ms
    makes it slow (to try a gateway dying mid-call)."""
    time.sleep(delay_ms / 1000)
    words = (prompt.split() * 5)[:max_tokens]
    return {"text": " ".join(words), "usage": {"completion_tokens": len(words)}}


def service_limits(rate, tokens, free_slots):
    """RateLimit: what each limiter has left (r) and, for the two buckets,
    the seconds until it is whole again (t)."""
    items = [f'"{name}";r={remaining}' + (f";t={ceil_s(reset_ms)}" if reset_ms >= 0 else "")
             for name, (remaining, reset_ms) in zip(NAMES, [rate, tokens])]
    return ", ".join(items + [f'"concurrency";r={free_slots}'])


class Gateway(BaseHTTPRequestHandler):
    def reply(self, status, body, headers=None):
        data = json.dumps(body).encode()
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):
        user = self.headers.get("X-User") or self.client_address[0]
        try:
            request = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
            prompt, max_tokens = str(request["prompt"]), int(request["max_tokens"])
            assert 1 <= max_tokens < 2**63
        except (ValueError, KeyError, TypeError, AssertionError):
            return self.reply(400, {"error": "expected JSON {prompt, 1 <= max_tokens < 2^63}"})
        keys = [f"llm:{{{user}}}:{name}" for name in NAMES]  # one hash tag: one cluster slot
        specs = ["TOKENBUCKET", *RATE, "RESERVE", *TOKENS, LEASE_MS, "ACQUIRE", SLOTS, LEASE_MS]
        costs = [1, max_tokens, 1]
        try:
            allowed, retry_ms, rate, tokens, slots = limiter.call(
                "RL.ALL", keys, [*specs, *costs], native=[*specs, "COSTS", *costs])
        except redis.RedisError as e:  # Redis down, or a key of another type
            return self.reply(503, {"error": f"rate limiter unavailable: {e}"})
        headers = {"RateLimit-Policy": POLICY, "X-RateLimit-Backend": limiter.backend,
                   "RateLimit": service_limits(rate[2::2], tokens[2::2], slots[2])}
        if not allowed:
            body = {"error": "too many requests", "retry_after_ms": retry_ms,
                    "violated-policies": [n for n, r in zip(NAMES, [rate, tokens, slots]) if not r[0]]}
            if retry_ms < 0:  # max_tokens above the whole budget: waiting never helps
                return self.reply(413, {**body, "error": "max_tokens above the budget"}, headers)
            headers["Retry-After"] = str(ceil_s(retry_ms))
            return self.reply(429, body, headers)

        reservation, lease = tokens[5], slots[5]
        print(f"admitted user={user} reservation={reservation} lease={lease}", flush=True)
        try:
            answer = model(prompt, max_tokens, request.get("stand_in_delay_ms", 0))
        except Exception as e:
            limiter.call("RL.CANCEL", [keys[1]], [reservation])  # nothing was generated
            limiter.call("RL.RELEASE", [keys[2]], [lease])
            return self.reply(502, {"error": f"model failed: {e}"}, headers)
        released = limiter.call("RL.RELEASE", [keys[2]], [lease])
        settled, _, left, _, reset_ms = limiter.call(
            "RL.SETTLE", [keys[1]], [reservation, answer["usage"]["completion_tokens"]])
        # The budget after the settlement; the slots with our own given back.
        headers["RateLimit"] = service_limits(rate[2::2], [left, reset_ms], slots[2] + released)
        self.reply(200, {**answer, "settled": settled}, headers)

    def log_message(self, *args):
        pass


if __name__ == "__main__":
    server = ThreadingHTTPServer(("127.0.0.1", int(os.environ.get("PORT", "8081"))), Gateway)
    print(f"listening on http://127.0.0.1:{server.server_address[1]} backend={limiter.backend}",
          flush=True)
    server.serve_forever()
