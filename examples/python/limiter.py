"""RL.* commands through redis-py: native when the module is loaded, else the
reference scripts in lua/ (SCRIPT LOAD once, EVALSHA, reload on NOSCRIPT).

Both paths read the server's clock (native: no AT; Lua: now_ms left empty)
unless client_clock=True, which sends this process's clock instead.
"""
import os
import sys
import time

import redis

LUA_DIR = os.environ.get(
    "RL_LUA_DIR", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "lua"))
SCRIPTS = {"RL.COST": "token_bucket.lua", "RL.ALL": "all.lua", "RL.SETTLE": "settle.lua",
           "RL.CANCEL": "cancel.lua", "RL.RELEASE": "release.lua"}


def ceil_s(ms):
    """Milliseconds (an int) to whole seconds, rounded up: a client told to
    wait that long is never early."""
    return -(-ms // 1000)


class Limiter:
    def __init__(self, r: redis.Redis, client_clock=False):
        self.r, self.client_clock, self.shas = r, client_clock, {}
        # COMMAND LIST FILTERBY MODULE rl: empty when the module is not loaded.
        self.backend = "module" if r.command_list(module="rl") else "lua"

    def call(self, command, keys, args, native=None):
        """Runs `command` on `keys`. `args` are the script's ARGV (before
        now_ms); `native` the command's own arguments after the keys when they
        differ (RL.ALL's COSTS)."""
        now = str(time.time_ns() // 1_000_000) if self.client_clock else ""
        if self.backend == "module":
            numkeys = [len(keys)] if command == "RL.ALL" else []
            at = ["AT", now] if now else []
            try:
                return self.r.execute_command(
                    command, *numkeys, *keys, *(args if native is None else native), *at)
            except redis.ResponseError as e:
                if "unknown command" not in str(e):
                    raise
                self.backend = "lua"  # e.g. failed over to a server without the module
                print("module gone: switching to lua", file=sys.stderr, flush=True)
        return self._evalsha(SCRIPTS[command], keys, [*args, now])

    def _evalsha(self, script, keys, argv):
        if script not in self.shas:
            with open(os.path.join(LUA_DIR, script)) as f:
                self.shas[script] = self.r.script_load(f.read())
        try:
            return self.r.evalsha(self.shas[script], len(keys), *keys, *argv)
        except redis.exceptions.NoScriptError:  # SCRIPT FLUSH, restart, failover
            del self.shas[script]
            return self._evalsha(script, keys, argv)
