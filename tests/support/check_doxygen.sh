#!/bin/sh
# The API reference check (ctest doc_reference, target sgrpc_doxygen):
# runs Doxygen over the public headers and fails when
#  - Doxygen warns (an undocumented function, type, field or macro, a bad
#    command): each warning is printed as FILE:LINE: text;
#  - a header has no "@file" comment (Doxygen would then leave its
#    functions out silently instead of warning about them);
#  - an enum value has no comment (Doxygen does not warn about those; read
#    from its XML output with python3 when it is installed).
#   check_doxygen.sh DOXYGEN DOXYFILE OUTDIR HEADER...
set -u
doxygen=$1
doxyfile=$2
out=$3
shift 3
rm -rf "$out"
mkdir -p "$out"
bad=0
for h in "$@"; do
  if ! grep -q '@file' "$h"; then
    echo "$h:1: error: no /** @file ... */ comment (its declarations would not be checked)"
    bad=1
  fi
done
"$doxygen" "$doxyfile" > "$out/doxygen.log" 2>&1
rc=$?
if [ -s "$out/warnings.log" ]; then
  cat "$out/warnings.log"
  bad=1
fi
if [ $rc -ne 0 ]; then
  echo "check_doxygen: doxygen exited $rc"
  tail -n 20 "$out/doxygen.log"
  bad=1
fi
if command -v python3 > /dev/null && [ -d "$out/xml" ]; then
  python3 - "$out/xml" << 'PY' || bad=1
import glob, sys, xml.etree.ElementTree as ET
seen, bad = set(), 0
for f in sorted(glob.glob(sys.argv[1] + "/*.xml")):
    for ev in ET.parse(f).getroot().iter("enumvalue"):
        text = "".join(ev.find("briefdescription").itertext()) + \
               "".join(ev.find("detaileddescription").itertext())
        loc = ev.find("location")
        loc = loc.attrib if loc is not None else {}
        key = (loc.get("file", "?"), loc.get("line", "?"))
        if text.strip() or key in seen:
            continue
        seen.add(key)
        print("%s:%s: warning: enum value %s is not documented." %
              (key[0], key[1], ev.find("name").text))
        bad = 1
sys.exit(bad)
PY
fi
n=$#
if [ $bad -ne 0 ]; then
  echo "check_doxygen: FAILED (warnings above, as FILE:LINE)"
  exit 1
fi
echo "check_doxygen: $n headers, no warnings; reference in $out/html/index.html"
