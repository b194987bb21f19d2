#!/bin/sh
# The three adapters offer one surface (docs/adapters.md): the function
# sets of <sgrpc/epoll.h> and <sgrpc/kqueue.h> are the same, and
# <sgrpc/uv.h> has the same minus the four calls of a loop the adapter
# owns (run, run_once, stop, get_fd: libuv's loop is the user's).
# usage: check_adapter_surface.sh epoll.h kqueue.h uv.h
set -eu
[ $# -eq 3 ] || { echo "usage: $0 epoll.h kqueue.h uv.h" >&2; exit 2; }

# The declared function names of adapter $2 in header $1, prefix removed.
names() {
  grep 'SGRPC_EXTERN' "$1" | grep -o "sgrpc_$2_[a-z0-9_]*(" | sed "s/^sgrpc_$2_//; s/($//" |
    sort -u
}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
names "$1" epoll > "$tmp/epoll"
names "$2" kqueue > "$tmp/kqueue"
names "$3" uv > "$tmp/uv"
grep -v -x -e run -e run_once -e stop -e get_fd "$tmp/epoll" > "$tmp/owned_minus" || true

status=0
for f in epoll kqueue uv; do
  if [ ! -s "$tmp/$f" ]; then
    echo "no sgrpc_${f}_* function found in its header" >&2
    status=1
  fi
done
if ! diff -u "$tmp/epoll" "$tmp/kqueue"; then
  echo "epoll.h and kqueue.h declare different function sets" >&2
  status=1
fi
if ! diff -u "$tmp/owned_minus" "$tmp/uv"; then
  echo "uv.h must declare epoll.h's functions minus run, run_once, stop, get_fd" >&2
  status=1
fi
[ $status -eq 0 ] && echo "one adapter surface: $(tr '\n' ' ' < "$tmp/epoll")"
exit $status
