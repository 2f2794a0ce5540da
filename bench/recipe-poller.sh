#!/bin/bash
# The classic recipe's `ztps_daemon`, reproduced for `cargo xtask bench`.
#
# Once a second it lists the connected interfaces (`et*` whose operstate is `up`,
# standing in for eAPI `show interfaces status connected`) and, when an interface
# connects that was not connected at the previous poll, restarts ISC dhcpd bound to
# the connected interfaces, as `service dhcpd restart` did: dhcpd only listens on
# the interfaces it was given at start.
#
# Bash builtins only (`read -t` on an fd that never has data is the sleep), so the
# idle poller forks nothing and its RSS is its own.
#
# usage: recipe-poller.sh DHCPD_CONF LEASE_FILE PID_FILE [MAX_SECONDS]
# env:   DHCPD (default /usr/sbin/dhcpd)
set -u
conf=$1 leases=$2 pidf=$3 max=${4:-3600}
dhcpd=${DHCPD:-/usr/sbin/dhcpd}
exec 3<> <(:)
dhcpd_pid=
known=" "
stop() {
    [[ -n $dhcpd_pid ]] && kill "$dhcpd_pid" 2>/dev/null && wait "$dhcpd_pid"
    exit 0
}
trap stop TERM INT
for ((i = 0; i < max; i++)); do
    now=" "
    for f in /sys/class/net/et*/operstate; do
        [[ -r $f ]] || continue
        read -r state < "$f" || continue
        if [[ $state == up ]]; then
            name=${f#/sys/class/net/}
            now+="${name%/operstate} "
        fi
    done
    new=0
    for n in $now; do
        [[ $known == *" $n "* ]] || new=1
    done
    if ((new)); then
        echo "poller: connected:$now-> restarting dhcpd"
        if [[ -n $dhcpd_pid ]]; then
            kill "$dhcpd_pid" 2>/dev/null
            wait "$dhcpd_pid"
        fi
        # shellcheck disable=SC2086 # one argument per interface
        "$dhcpd" -4 -f -d -cf "$conf" -lf "$leases" -pf "$pidf" $now &
        dhcpd_pid=$!
    fi
    known=$now
    read -r -t 1 -u 3 _ || true
done
stop
