#!/bin/sh
# deps.sh: install what carteiro needs from Debian's packages, if missing.
#
#   scripts/deps.sh build   compiler, make, libevent, OpenSSL, c-ares, libcrypt headers,
#                           and the Public Suffix List (read at run time by DMARC)
#   scripts/deps.sh test    the above, plus clang/libFuzzer and the real clients
#                           the tests talk to the server with (Python, swaks with
#                           Net::SSLeay for its TLS, msmtp,
#                           openssl), ss, and the test network's DNS and SMTP peers
#                           (dnsmasq, aiosmtpd), nmap (its smtp-open-relay script),
#                           python3-yaml (the SPF test suite's data), python3-dkim, and
#                           postfix with dovecot-pop3d (a real Postfix exchanges mail with
#                           carteiro both ways, its SASL through Dovecot's auth socket)
#   scripts/deps.sh bench   the build packages, plus what `make bench` compares against:
#                           postfix (smtp-source, smtp-sink, the reference server),
#                           dovecot-pop3d, dnsmasq, procps and iproute2
#
# Installing postfix or dovecot must not start a system mail server: for their install a
# policy-rc.d that refuses every service start is put in place (and removed after) unless
# one already exists, and postfix is preseeded to 'No configuration'.
#
# It runs apt-get only when a package is missing (with sudo when not root).
# When run as root it also creates the system user 'carteiro' that the
# server drops to after binding its ports, as a Debian package would.
set -eu

what=${1:-build}

build_pkgs="gcc make pkg-config libc6-dev libevent-dev libssl-dev libcrypt-dev libc-ares-dev zlib1g-dev publicsuffix"
bench_pkgs="postfix dovecot-pop3d dnsmasq-base procps iproute2 python3"
test_pkgs="clang libclang-rt-14-dev python3 swaks libnet-ssleay-perl iproute2 openssl msmtp dnsmasq-base python3-aiosmtpd python3-yaml fetchmail mpop curl nmap python3-dkim python3-nacl postfix dovecot-pop3d"

case "$what" in
	build) pkgs=$build_pkgs ;;
	test) pkgs="$build_pkgs $test_pkgs" ;;
	bench) pkgs="$build_pkgs $bench_pkgs" ;;
	*) echo "usage: $0 build|test|bench" >&2; exit 2 ;;
esac

missing=""
for p in $pkgs; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
		missing="$missing $p"
	fi
done

if [ -n "$missing" ]; then
	if [ "$(id -u)" -eq 0 ]; then
		sudo=""
	elif command -v sudo >/dev/null 2>&1; then
		sudo="sudo"
	else
		echo "deps.sh: missing packages:$missing (run as root or install sudo)" >&2
		exit 1
	fi
	echo "deps.sh: installing$missing"
	export DEBIAN_FRONTEND=noninteractive
	policy=""
	case " $missing " in
	*" postfix "* | *" dovecot-pop3d "*) servers=yes ;;
	*) servers=no ;;
	esac
	if [ "$servers" = yes ] && [ ! -e /usr/sbin/policy-rc.d ]; then
		# No system postfix or dovecot is started by the install (invoke-rc.d asks this).
		policy=/usr/sbin/policy-rc.d
		printf '#!/bin/sh\nexit 101\n' | $sudo tee $policy >/dev/null
		$sudo chmod 755 $policy
		trap '$sudo rm -f $policy' EXIT
		echo "postfix postfix/main_mailer_type select No configuration" |
			$sudo debconf-set-selections
	fi
	$sudo apt-get update -qq
	# shellcheck disable=SC2086
	$sudo apt-get install -y -qq --no-install-recommends $missing >/dev/null
	if [ -n "$policy" ]; then
		$sudo rm -f $policy
		trap - EXIT
	fi
fi

if [ "$(id -u)" -eq 0 ] && ! getent passwd carteiro >/dev/null; then
	echo "deps.sh: creating the system user 'carteiro'"
	useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin carteiro
fi
exit 0
