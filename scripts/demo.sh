#!/bin/sh
# demo.sh: start the demo server of `make run` in the foreground.
# Everything it writes is under ./run/ (spool, mailboxes, demo users).
set -eu
bin=${1:-build/release/carteiro}
cat <<'TXT'
carteiro demo: SMTP on 127.0.0.1:2525, local domain example.test, mailbox demo@example.test
  send:  swaks --server 127.0.0.1:2525 --to demo@example.test --from you@example.org
  read:  ls run/mail/example.test/demo/new/
  queue: build/release/carteiro queue list --demo
Stop with Ctrl-C.
TXT
exec "$bin" serve --demo
