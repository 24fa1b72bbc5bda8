# chatmail-swift: `make run` and `make test` work on a fresh Debian 12 with Swift installed.

SWIFT      ?= swift
CONFIG     ?= supervisor.conf
PREFIX     ?= /usr/local
SUDO       := $(if $(filter 0,$(shell id -u)),,sudo)
BUILD_DEPS := pkg-config libssl-dev libsqlite3-dev libsystemd-dev zlib1g-dev libcurl4-openssl-dev
TEST_DEPS  := systemd util-linux iproute2 openssl curl b3sum zbar-tools nftables python3-venv shadowsocks-libev postfix \
              prometheus
# Delta Chat core 2.65 or later (the issue's version; test_front_deltachat.py needs at least 2.46).
PIP_DEPS   := pytest qrcode cryptography blake3 pycryptodome pproxy aioice aiortc imapclient deltachat-rpc-server~=2.65 \
              deltachat-rpc-client~=2.65 prometheus-client
BENCH_DEPS := dovecot-imapd dovecot-lmtpd libnginx-mod-stream
# `make deb`: debhelper and dpkg-buildpackage build the package, lintian checks it.
DEB_DEPS   := debhelper dpkg-dev lintian
# `make test-deb`: a Debian 12 root from the archive, booted with systemd as PID 1.
DEB_TEST_DEPS := debootstrap systemd-container
# The real iroh clients for the relay tests: both generations install as package `iroh`, so each gets a venv.
IROH_CLIENTS := 1.2.0 0.35.0
IROH_VENVS   := .build/iroh-venvs
DELTACHAT_OLD := .build/deltachat-2.0.0
# Delta Chat core through its C API (the CFFI bindings bundle libdeltachat): the only way to give
# core a push device token (dc_accounts_set_push_device_token); deltachat-rpc-server has no call for it.
DELTACHAT_CFFI := .build/deltachat-cffi-2.23.0
PROGRAMS   := chatmail-supervisor chatmailctl chatmail-imap chatmail-turn chatmail-iroh chatmail-shadowsocks
BIN         = $(shell $(SWIFT) build --show-bin-path)
RELEASE_BIN = $(shell $(SWIFT) build -c release --show-bin-path)

.PHONY: all build run test test-swift test-integration bench install deb test-deb deps test-deps clean

all: build

# Installs the Debian packages in $(1) that are not installed yet.
define apt_install
	@missing=$$(for p in $(1); do dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing:" $$missing; \
	  $(SUDO) apt-get update -qq && $(SUDO) DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi
endef

deps:
	$(call apt_install,$(BUILD_DEPS))

test-deps: deps
	$(call apt_install,$(TEST_DEPS))
	@# coturn's client tools are the TURN tests' peers; its package also starts a turnserver on 3478,
	@# which the tests never use: stop it when this installs the package.
	@if ! dpkg-query -W -f='$${Status}' coturn 2>/dev/null | grep -q 'ok installed'; then \
	  echo "installing: coturn"; \
	  $(SUDO) apt-get update -qq && $(SUDO) DEBIAN_FRONTEND=noninteractive apt-get install -y -qq coturn >/dev/null; \
	  if [ -d /run/systemd/system ]; then $(SUDO) systemctl disable --now coturn >/dev/null 2>&1 || true; fi; \
	fi
	@python3 -m pip install -q --disable-pip-version-check --root-user-action=ignore $(PIP_DEPS) \
	  || python3 -m pip install -q --break-system-packages $(PIP_DEPS)
	@# Delta Chat's oldest named core (2.0) with its own client, for the IMAP old-core test.
	@$(DELTACHAT_OLD)/bin/python -c 'import deltachat_rpc_client, imapclient, pytest' 2>/dev/null || { \
	  python3 -m venv $(DELTACHAT_OLD) && $(DELTACHAT_OLD)/bin/python -m pip install -q --disable-pip-version-check \
	    deltachat-rpc-server==2.0.0 deltachat-rpc-client==2.0.0 pytest imapclient; }
	@$(DELTACHAT_CFFI)/bin/python -c 'import deltachat.capi' 2>/dev/null || { \
	  python3 -m venv $(DELTACHAT_CFFI) && $(DELTACHAT_CFFI)/bin/python -m pip install -q --disable-pip-version-check \
	    deltachat==2.23.0; }
	@for v in $(IROH_CLIENTS); do \
	  $(IROH_VENVS)/$$v/bin/python -c 'import iroh' 2>/dev/null || { \
	    python3 -m venv $(IROH_VENVS)/$$v && \
	    $(IROH_VENVS)/$$v/bin/python -m pip install -q --disable-pip-version-check iroh==$$v; }; \
	done

build: deps
	$(SWIFT) build

# Runs the supervisor in the foreground with the development configuration (loopback, high
# ports, state in ./.run/). Children that are not built yet show as "not installed".
run: build
	@$(BIN)/chatmailctl ports --config $(CONFIG)
	@echo "Invite (Delta Chat): $$($(BIN)/chatmailctl invite --config $(CONFIG))"
	$(BIN)/chatmail-supervisor --config $(CONFIG)

test: test-deps
	$(SWIFT) build --build-tests
	$(MAKE) --no-print-directory test-swift test-integration

# The allocation tests count mallocs through a preloaded counter; they are skipped without it.
test-swift:
	$(SWIFT) test --skip-build
	cc -O2 -shared -fPIC -o $(BIN)/libmalloccount.so Tests/MallocCounter/malloccount.c
	LD_PRELOAD=$(BIN)/libmalloccount.so $(SWIFT) test --skip-build --filter AllocationTests

test-integration:
	cd Tests/integration && CHATMAIL_BIN_DIR=$(BIN) python3 -m pytest -q -rfs .

bench: test-deps
	@# nginx's stream module with ssl_preread is the front bench's anchor (the bench runs its own instance); the
	@# package also starts a web server on port 80, which the bench never uses: stop it when this installs it.
	@if ! dpkg-query -W -f='$${Status}' nginx 2>/dev/null | grep -q 'ok installed'; then \
	  echo "installing: nginx"; \
	  $(SUDO) apt-get update -qq && $(SUDO) DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx >/dev/null; \
	  if [ -d /run/systemd/system ]; then $(SUDO) systemctl disable --now nginx >/dev/null 2>&1 || true; fi; \
	fi
	$(call apt_install,$(BENCH_DEPS))
	$(SWIFT) build -c release
	CHATMAIL_BIN_DIR=$(RELEASE_BIN) python3 bench/supervisor_bench.py
	CHATMAIL_BIN_DIR=$(RELEASE_BIN) python3 bench/metrics_bench.py
	CHATMAIL_BIN_DIR=$(RELEASE_BIN) python3 bench/tls_bench.py
	CHATMAIL_BIN_DIR=$(RELEASE_BIN) python3 bench/iroh_bench.py
	CHATMAIL_BIN_DIR=$(RELEASE_BIN) python3 bench/front_bench.py
	CHATMAIL_BIN_DIR=$(RELEASE_BIN) python3 bench/shadowsocks_bench.py
	CHATMAIL_BIN_DIR=$(RELEASE_BIN) python3 bench/turn_bench.py
	CHATMAIL_BIN_DIR=$(RELEASE_BIN) python3 bench/imap_bench.py
	CHATMAIL_BIN_DIR=$(RELEASE_BIN) python3 bench/push_bench.py
	CHATMAIL_BIN_DIR=$(RELEASE_BIN) python3 bench/sasl_bench.py

install: deps
	$(SWIFT) build -c release
	$(SUDO) install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)/etc/chatmail $(DESTDIR)/etc/systemd/system \
	  $(DESTDIR)/usr/lib/sysusers.d $(DESTDIR)/usr/lib/tmpfiles.d
	for p in $(PROGRAMS); do [ ! -x $(RELEASE_BIN)/$$p ] || \
	  $(SUDO) install -m 0755 $(RELEASE_BIN)/$$p $(DESTDIR)$(PREFIX)/bin/; done
	$(SUDO) install -m 0644 packaging/chatmail.service $(DESTDIR)/etc/systemd/system/chatmail.service
	$(SUDO) install -m 0644 packaging/chatmail.sysusers $(DESTDIR)/usr/lib/sysusers.d/chatmail.conf
	$(SUDO) install -m 0644 packaging/chatmail.tmpfiles $(DESTDIR)/usr/lib/tmpfiles.d/chatmail.conf
	[ -e $(DESTDIR)/etc/chatmail/supervisor.conf ] || \
	  $(SUDO) install -m 0640 packaging/supervisor.conf $(DESTDIR)/etc/chatmail/supervisor.conf
	@echo "installed; edit /etc/chatmail/supervisor.conf, then: systemd-sysusers; systemd-tmpfiles --create;" \
	  "systemctl daemon-reload; systemctl enable --now chatmail"

# The Debian package, built the Debian way (debian/, debhelper, dpkg-buildpackage) with the Swift
# runtime linked statically; lands in $(DEB_DIR) with its lintian report checked.
DEB_DIR := .build/deb
DEB      = $(DEB_DIR)/chatmail-swift_$(shell dpkg-parsechangelog -S Version)_$(shell dpkg-architecture -qDEB_HOST_ARCH).deb
deb: deps
	$(call apt_install,$(DEB_DEPS))
	DEB_BUILD_OPTIONS="noautodbgsym $$DEB_BUILD_OPTIONS" dpkg-buildpackage -b -us -uc
	@# dpkg-buildpackage writes next to the source tree; keep the results in the build directory.
	mkdir -p $(DEB_DIR)
	v=$$(dpkg-parsechangelog -S Version); \
	  mv ../chatmail-swift_$${v}_*.deb ../chatmail-swift_$${v}_*.buildinfo ../chatmail-swift_$${v}_*.changes $(DEB_DIR)/
	lintian --fail-on warning,error $(DEB)
	@echo "built $(DEB)"

# Installs the package into a clean Debian 12 root (cached under /var/cache/chatmail-tests/) and
# boots systemd in it with systemd-nspawn: start, status, reload, watchdog, journal, upgrade,
# stop, remove, purge (Tests/package/test_deb.py). Needs root.
test-deb: deb
	$(call apt_install,$(DEB_TEST_DEPS))
	cd Tests/package && CHATMAIL_DEB=$(abspath $(DEB)) python3 -m pytest -q -rfs -x -s test_deb.py

clean:
	rm -rf .build .run
