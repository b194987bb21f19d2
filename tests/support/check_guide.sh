#!/bin/bash
# ctest doc_guide: runs docs/guide.md as a reader would, in a scratch
# folder, against sgrpc installed from this build.
#  - every block preceded by "<!-- guide-file: NAME -->" is written to NAME
#    (the .proto, CMakeLists.txt, the C files);
#  - every ```sh block is run, in order, as one bash script (set -e) in the
#    project folder, with HOME set to the scratch folder. The install
#    block's first line (configure and build sgrpc itself: the build this
#    test runs in has done it) is left out and "sgrpc/build" names this
#    build folder; 50051 becomes a free port below 32768;
#  - every output block (``` with no language) must appear, line by line,
#    in what the commands printed;
#  - the C files that the guide's CMakeLists.txt does not build (embed.c,
#    server_uv.c) are compiled against the installed headers and the
#    generated stubs.
#   check_guide.sh BUILD_DIR GUIDE.md CC
set -u
build=$(cd "$1" && pwd)
guide=$2
cc=$3
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
proj=$work/greeter
mkdir -p "$proj" "$work/home"

# a free port below 32768 (the kernel's own picks are above)
port=
for i in $(seq 0 40); do
  p=$(( 20000 + ($$ * 13 + i * 211) % 12000 ))
  if python3 -c "import socket,sys; s=socket.socket(); s.bind(('127.0.0.1', $p))" 2>/dev/null; then
    port=$p
    break
  fi
done
[ -n "$port" ] || { echo "check_guide: no free port"; exit 1; }

awk -v dir="$proj" -v work="$work" '
  /^<!-- guide-file: .* -->$/ { name = $3; next }
  /^```/ && !inblock {
    inblock = 1
    lang = substr($0, 4)
    if (name != "") file = dir "/" name
    else if (lang == "sh") file = work "/commands.sh"
    else if (lang == "") file = work "/expected.txt"
    else file = ""
    name = ""
    next
  }
  /^```$/ && inblock { inblock = 0; if (file != "") close(file); next }
  inblock && file != "" { print >> file }
' "$guide"
for f in greeter.proto CMakeLists.txt server.c client.c embed.c server_uv.c; do
  [ -s "$proj/$f" ] || { echo "check_guide: the guide has no $f"; exit 1; }
done
if [ ! -s "$work/commands.sh" ] || [ ! -s "$work/expected.txt" ]; then
  echo "check_guide: no commands or no expected output"
  exit 1
fi

# this build instead of a fresh one; the port
sed -i -e '/^cmake -S sgrpc -B sgrpc\/build/d' -e "s|sgrpc/build|$build|g" \
  -e "s/50051/$port/g" "$work/commands.sh"
sed -i "s/50051/$port/g" "$proj"/*.c
echo "check_guide: running in $proj:"
sed 's/^/  | /' "$work/commands.sh"
out=$work/output.txt
if ! (cd "$proj" && HOME=$work/home timeout 240 bash -e "$work/commands.sh") > "$out" 2>&1; then
  cat "$out"
  echo "check_guide: a command failed"
  exit 1
fi
cat "$out"
missing=0
while IFS= read -r line; do
  grep -qxF -- "$line" "$out" || { echo "check_guide: expected output missing: $line"; missing=1; }
done < "$work/expected.txt"
[ $missing = 0 ] || exit 1

# the snippets the project does not build: compiled against the install
inc=$work/home/sgrpc/include
gen=$(dirname "$(find "$proj/build" -name greeter.sgrpc.h | head -n 1)")
flags=(-std=c11 -D_POSIX_C_SOURCE=200809L -Wall -Wextra -Werror "-I$inc" "-I$gen")
"$cc" "${flags[@]}" -c "$proj/embed.c" -o "$work/embed.o" ||
  { echo "check_guide: embed.c does not compile"; exit 1; }
if [ -f "$inc/sgrpc/uv.h" ]; then
  # shellcheck disable=SC2046 # one word per flag
  "$cc" "${flags[@]}" $(pkg-config --cflags libuv 2>/dev/null) -c "$proj/server_uv.c" -o "$work/server_uv.o" ||
    { echo "check_guide: server_uv.c does not compile"; exit 1; }
  echo "check_guide: server_uv.c compiles"
fi
echo "check_guide: OK (every command ran, the output matched, the snippets compile)"
