# ---- ztps-agent upgrade script body (agent/ztp/src/upgrade.sh) ----
# Uses only what EOS has: bash, curl, sha256sum and coreutils (df, wc, mv, rm, sync).
# On success EOS reboots into the new image with its new startup-config; on failure
# the partial image is removed, `failed` is reported, and EOS retries ZTP.

LC_ALL=C
PART="$FLASH/$IMAGE.part"
HEADERS="/tmp/ztps-image-headers.$$"
CURL=(curl -sS --connect-timeout 10)
if [ -n "$SERIAL" ]; then
    CURL+=(-H "X-Arista-Serial: $SERIAL")
fi

json_string() {
    local s=${1//\\/\\\\}
    s=${s//\"/\\\"}
    s=${s//[$'\001'-$'\037']/ }
    printf '"%s"' "$s"
}

# Best effort: a status post that fails never fails the upgrade.
report() {
    echo "ztps: $1: $2"
    "${CURL[@]}" --max-time 10 -o /dev/null -X POST -H 'Content-Type: application/json' \
        --data-binary "{\"stage\":$(json_string "$1"),\"message\":$(json_string "$2")}" \
        "$BASE_URL/ztp/status" || true
}

fail() {
    rm -f "$PART" "$HEADERS" "$FLASH/boot-config.ztps" "$FLASH/startup-config.ztps"
    echo "ztps: upgrade to EOS $VERSION failed: $1" >&2
    report failed "$1"
    exit 1
}

file_size() {
    if [ -f "$1" ]; then wc -c < "$1"; else echo 0; fi
}

sha256_of() {
    local sum
    sum=$(sha256sum "$1") || return 1
    echo "${sum%% *}"
}

free_kib() {
    df -Pk "$FLASH" | { read -r _; read -r _ _ _ avail _; echo "${avail:-0}"; }
}

# Space for what is left to download, plus a margin for EOS itself.
check_space() {
    local need=$(( (IMAGE_SIZE - $1 + 1023) / 1024 + MARGIN_KIB )) have
    have=$(free_kib)
    if [ "$have" -lt "$need" ]; then
        fail "not enough space on $FLASH for $IMAGE: need $need KiB (image plus $MARGIN_KIB KiB margin), $have KiB free"
    fi
}

# The status code and Retry-After of the last response in $HEADERS.
last_status() {
    local line code=
    while IFS= read -r line; do
        line=${line%$'\r'}
        case $line in HTTP/*) read -r _ code _ <<< "$line" ;; esac
    done < "$HEADERS"
    echo "${code:-none}"
}

retry_after() {
    local line value=
    while IFS= read -r line; do
        line=${line%$'\r'}
        case ${line,,} in retry-after:*) value=${line#*:}; value=${value// /} ;; esac
    done < "$HEADERS"
    case $value in
        '' | *[!0-9]* | ?????*) echo 5 ;;
        *) value=$((10#$value)); echo $(( value < 1 ? 1 : value > 60 ? 60 : value )) ;;
    esac
}

# Downloads the image to $PART, resuming what is there; waits out 503 (the
# spine's download cap) for at most MAX_BUSY_SECONDS; retries other failures
# MAX_ATTEMPTS times, each resuming where the last stopped.
download() {
    local attempts=0 busy_until=$((SECONDS + MAX_BUSY_SECONDS)) have rc code wait
    while :; do
        have=$(file_size "$PART")
        if [ "$have" -gt "$IMAGE_SIZE" ]; then
            rm -f "$PART"
            have=0
        fi
        if [ "$have" -eq "$IMAGE_SIZE" ]; then
            return 0
        fi
        check_space "$have"
        if [ "$have" -gt 0 ]; then
            echo "ztps: resuming $IMAGE at byte $have of $IMAGE_SIZE"
        fi
        : > "$HEADERS"
        rc=0
        "${CURL[@]}" --fail --speed-limit 1024 --speed-time 60 -D "$HEADERS" \
            -C - -o "$PART" "$BASE_URL/ztp/image" || rc=$?
        if [ "$rc" -eq 0 ]; then
            return 0
        fi
        code=$(last_status)
        if [ "$code" = 503 ]; then
            if [ "$SECONDS" -ge "$busy_until" ]; then
                fail "the spine stayed busy (503) for ${MAX_BUSY_SECONDS}s"
            fi
            wait=$(retry_after)
            echo "ztps: the spine is busy (503), retrying in ${wait}s"
            sleep "$wait"
            continue
        fi
        attempts=$((attempts + 1))
        if [ "$attempts" -ge "$MAX_ATTEMPTS" ]; then
            fail "downloading $IMAGE failed $attempts times (last: curl exit $rc, HTTP $code)"
        fi
        # 416, or curl 33 (range refused): what is on flash cannot be resumed.
        if [ "$code" = 416 ] || [ "$rc" -eq 33 ]; then
            rm -f "$PART"
        fi
        echo "ztps: download interrupted (curl exit $rc, HTTP $code), resuming"
        sleep 2
    done
}

# Moves $FLASH/$1.ztps, written just before, over $FLASH/$1: never half a file.
install_file() {
    mv -f "$FLASH/$1.ztps" "$FLASH/$1" || fail "cannot write $FLASH/$1"
}

main() {
    if [ "$(file_size "$FLASH/$IMAGE")" -eq "$IMAGE_SIZE" ] \
        && [ "$(sha256_of "$FLASH/$IMAGE")" = "$IMAGE_SHA256" ]; then
        report image "$IMAGE for EOS $VERSION is already on flash"
        rm -f "$PART"
    else
        report image "downloading $IMAGE ($IMAGE_SIZE bytes) for EOS $VERSION"
        download
        local size sum
        size=$(file_size "$PART")
        if [ "$size" -ne "$IMAGE_SIZE" ]; then
            fail "$IMAGE is $size bytes, expected $IMAGE_SIZE"
        fi
        sum=$(sha256_of "$PART") || fail "cannot read $PART"
        if [ "$sum" != "$IMAGE_SHA256" ]; then
            fail "sha256 of $IMAGE is $sum, expected $IMAGE_SHA256"
        fi
        mv -f "$PART" "$FLASH/$IMAGE" || fail "cannot rename $PART"
    fi
    rm -f "$HEADERS"

    printf 'SWI=flash:%s\n' "$IMAGE" > "$FLASH/boot-config.ztps" \
        || fail "cannot write $FLASH/boot-config"
    install_file boot-config
    sync
    report image-done "$IMAGE verified (sha256 $IMAGE_SHA256); boot-config is SWI=flash:$IMAGE"

    "${CURL[@]}" --fail --max-time 60 -o "$FLASH/startup-config.ztps" "$BASE_URL/ztp/config" \
        || fail "cannot download the startup-config from $BASE_URL/ztp/config"
    install_file startup-config
    sync
    echo "ztps: EOS $VERSION and the startup-config are on flash; EOS reboots now"
    exit 0
}

main
