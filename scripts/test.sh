#!/usr/bin/env bash
# The README's test command: installs what the tests need when it is missing, then runs
# every test. On CI (CI=true) nothing may skip: tests that need Docker, Redis or
# PostgreSQL fail without them, and the ownership tests fail where they cannot run as a
# second Unix user.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v tmux >/dev/null 2>&1 || need_apt+=(tmux)
command -v sqlite3 >/dev/null 2>&1 || need_apt+=(sqlite3)
# The man page test renders `watchpost man` with man -l (groff underneath).
command -v man >/dev/null 2>&1 || need_apt+=(man-db)
# The disk test makes an ext4 with reserved blocks in a file and loop-mounts it (as root).
command -v mkfs.ext4 >/dev/null 2>&1 || need_apt+=(e2fsprogs)
command -v mount >/dev/null 2>&1 || need_apt+=(mount)
# The host figures are checked against free (procps) at the same moment.
command -v free >/dev/null 2>&1 || need_apt+=(procps)
# tests/it/readonly_db.rs runs `watchpost check` as a second Unix user it creates (as root).
command -v useradd >/dev/null 2>&1 || need_apt+=(passwd)
command -v runuser >/dev/null 2>&1 || need_apt+=(util-linux)
# The SSH tests run a real OpenSSH server on 127.0.0.1 (and ssh-keygen, ssh-agent).
[ -x /usr/sbin/sshd ] || need_apt+=(openssh-server)
# A static busybox builds the FROM-scratch test images (no image can be pulled).
if ! file -L /bin/busybox 2>/dev/null | grep -q 'statically linked'; then need_apt+=(busybox-static file); fi
# The Prometheus tests run Debian's real servers on 127.0.0.1.
command -v prometheus >/dev/null 2>&1 || need_apt+=(prometheus)
command -v prometheus-alertmanager >/dev/null 2>&1 || need_apt+=(prometheus-alertmanager)
# The Redis and PostgreSQL sources are checked against Debian's real servers on 127.0.0.1.
command -v redis-server >/dev/null 2>&1 || need_apt+=(redis-server)
command -v redis-cli >/dev/null 2>&1 || need_apt+=(redis-tools)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need_apt+=(postgresql)
command -v psql >/dev/null 2>&1 || need_apt+=(postgresql-client)
# The journald test writes a real journal file from the export format (and reads it with
# the real journalctl --file).
[ -x /lib/systemd/systemd-journal-remote ] || [ -x /usr/lib/systemd/systemd-journal-remote ] || need_apt+=(systemd-journal-remote)
# The TLS test makes its own CA with openssl.
command -v openssl >/dev/null 2>&1 || need_apt+=(openssl)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "test.sh: installing ${need_apt[*]}"
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

if [ "${CI:-}" = "true" ]; then
  export WATCHPOST_REQUIRE_DOCKER=1
  export WATCHPOST_REQUIRE_SSH=1
  export WATCHPOST_REQUIRE_PROMETHEUS=1
  export WATCHPOST_REQUIRE_REDIS=1
  export WATCHPOST_REQUIRE_POSTGRES=1
  export WATCHPOST_REQUIRE_USERS=1
fi

# The soak test drives the release binary (and the README's demo command runs it).
cargo build --release --locked
if command -v cargo-nextest >/dev/null 2>&1; then
  cargo nextest run --locked --no-fail-fast "$@"
else
  cargo test --locked --no-fail-fast "$@"
fi
