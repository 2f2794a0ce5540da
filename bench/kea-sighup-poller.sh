#!/bin/bash
# Kea's counterpart of the classic recipe's poller, for `cargo xtask bench`.
#
# kea-dhcp4 skips interfaces that are down when it opens its sockets and does not
# notice when they come up; it re-reads its config file and reopens its sockets on
# SIGHUP. Once a second this lists the connected interfaces (`et*` whose operstate
# is `up`) and sends SIGHUP to Kea when one connects that was not connected at the
# previous poll. Bash builtins only, like recipe-poller.sh.
#
# usage: kea-sighup-poller.sh KEA_PID [MAX_SECONDS]
set -u
kea=$1 max=${2:-3600}
exec 3<> <(:)
known=
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
    if [[ -n $known ]]; then
        for n in $now; do
            if [[ $known != *" $n "* ]]; then
                echo "poller: $n connected -> SIGHUP kea"
                kill -HUP "$kea" || exit 1
                break
            fi
        done
    fi
    known=$now
    read -r -t 1 -u 3 _ || true
done
