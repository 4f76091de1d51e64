#!/bin/sh
# demo.sh: start the demo server of `make run` in the foreground.
# Everything it writes is under ./run/ (spool, mailboxes, demo users, TLS certificate).
set -eu
bin=${1:-build/release/carteiro}
cat <<'TXT'
carteiro demo: local domain example.test, mailbox demo@example.test (password: demo)
  SMTP on 127.0.0.1:2525 (STARTTLS), submission on 127.0.0.1:2587 (STARTTLS) and
  127.0.0.1:2465 (implicit TLS), self-signed certificate in run/tls/
  send:   swaks --server 127.0.0.1:2525 --to demo@example.test --from you@example.org
  submit: swaks --server 127.0.0.1:2587 --tls --auth PLAIN --auth-user demo@example.test \
            --auth-password demo --from demo@example.test --to demo@example.test
  read:   ls run/mail/example.test/demo/new/
  queue:  build/release/carteiro queue list --demo
Stop with Ctrl-C.
TXT
exec "$bin" serve --demo
