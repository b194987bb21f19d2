#!/usr/bin/python3
"""Third-party .proto corpus through protoc-c and protoc-gen-sgrpc.

Every .proto that Debian packages put on this machine and that nobody in
this project wrote (grpc-proto, protobuf's well-known types and plugin.proto
from libprotobuf-dev, protobuf-c.proto, protobuf-compiler's addressbook
example, gitaly's protos from golang-gitaly-proto-dev, and the copies of the
well-known types bundled in python3-grpc-tools) is run through one protoc
call per group with --c_out and --sgrpc_out. Then:

  * every generated .c compiles alone with -Wall -Wextra -Werror
    (protoc-c's own defects, listed in known_protoc_c_defects.txt, are
    checked to still be exactly those and handled as described there);
  * one translation unit includes every generated .sgrpc.h of a group at
    once, and links with every object of the group and libsgrpc-rpc into one
    program (a duplicate symbol, typedef, enum constant or macro between
    files fails here);
  * that program walks every generated service table, adds every method to
    an sgrpc router, finds it again by :path, unpacks the embedded
    FileDescriptorProto with the corpus's own generated descriptor.pb-c, and
    prints what it saw; the output must equal what protoc's descriptor set
    says about the same files (service and method names, streaming kinds,
    request and response types).

Files whose imports exist in no package on this machine are left out with
the missing import named; any other protoc error fails the test.

usage: corpus.py --protoc P --plugin PLUGIN --cc CC --work DIR
                 --include DIR... --link ARG...
"""
import argparse
import glob
import os
import re
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
GITALY = "/usr/share/gocode/src/gitlab.com/gitlab-org/gitaly-proto"
GRPC_TOOLS = "/usr/lib/python3/dist-packages/grpc_tools/_proto"


def groups():
    """(name, import roots, files relative to a root, required package)."""
    deb_roots, deb_files, notes = [], [], []

    def add(root, rels, package, required):
        rels = sorted(r for r in rels if os.path.isfile(os.path.join(root, r)))
        if not rels:
            if required:
                sys.exit("corpus: nothing under %s: install %s" % (root, package))
            notes.append("not installed: %s (%s)" % (package, root))
            return
        if root not in deb_roots:
            deb_roots.append(root)
        deb_files.extend(rels)

    def walk(root, sub):
        out = []
        for d, _, fs in os.walk(os.path.join(root, sub)):
            out += [os.path.relpath(os.path.join(d, f), root) for f in fs if f.endswith(".proto")]
        return out

    add("/usr/share/grpc-proto", walk("/usr/share/grpc-proto", "grpc"), "grpc-proto", True)
    add("/usr/include", walk("/usr/include", "google/protobuf"), "libprotobuf-dev", True)
    add("/usr/include", ["protobuf-c/protobuf-c.proto"], "libprotobuf-c-dev", False)
    add("/usr/share/doc/protobuf-compiler/examples", ["addressbook.proto"], "protobuf-compiler",
        False)
    # top level only: go/internal/linter/testdata holds deliberately invalid input
    add(GITALY, [os.path.basename(p) for p in glob.glob(GITALY + "/*.proto")],
        "golang-gitaly-proto-dev", False)
    out = [("debian", deb_roots, deb_files)]
    # grpc_tools bundles its own (newer) well-known types under the same
    # names as libprotobuf-dev's: a group of their own, linked apart.
    tools = walk(GRPC_TOOLS, "google") if os.path.isdir(GRPC_TOOLS) else []
    if tools:
        out.append(("grpc_tools", [GRPC_TOOLS], sorted(tools)))
    else:
        notes.append("not installed: python3-grpc-tools (%s)" % GRPC_TOOLS)
    return out, notes


def run(cmd):
    # LC_ALL=C: compiler diagnostics in ASCII, as known_protoc_c_defects.txt has them
    env = dict(os.environ, LC_ALL="C")
    return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          timeout=600, env=env)


def load_defects():
    out = {}
    with open(os.path.join(HERE, "known_protoc_c_defects.txt"), encoding="utf-8") as f:
        for line in f:
            if line.strip() and not line.startswith("#"):
                name, kind, text = line.rstrip("\n").split("\t")
                out[name] = (kind, text)
    return out


def c_ident_escape(s):
    return s.replace("\\", "\\\\").replace('"', '\\"')


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--protoc", required=True)
    ap.add_argument("--plugin", required=True)
    ap.add_argument("--cc", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--include", nargs="+", default=[])
    ap.add_argument("--link", nargs=argparse.REMAINDER, default=[])  # last
    a = ap.parse_args()

    from google.protobuf import descriptor_pb2  # python3-protobuf, with grpcio

    defects = load_defects()
    # clang accepts "{0}" for any aggregate without -Wmissing-braces (gcc
    # warns), so that defect cannot show there: expect it from gcc only
    if "clang" in run([a.cc, "--version"]).stdout:
        defects = {k: v for k, v in defects.items() if v[0] != "missing-braces"}
    seen_defects = set()
    problems = []
    totals = {"files": 0, "skipped": 0, "c": 0, "services": 0, "methods": 0}
    grps, notes = groups()
    for n in notes:
        print("corpus: " + n)
    shutil.rmtree(a.work, ignore_errors=True)
    os.makedirs(a.work)
    cflags = ["-std=c11", "-Wall", "-Wextra", "-Werror"] + ["-I" + d for d in a.include]

    for gname, roots, files in grps:
        gdir = os.path.join(a.work, gname)
        out = os.path.join(gdir, "out")
        os.makedirs(out)
        inc = ["-I" + r for r in roots]

        # 1. leave out files whose imports no installed package provides
        usable = []
        for rel in files:
            r = run([a.protoc] + inc + ["-o", os.devnull, rel])
            if r.returncode == 0:
                usable.append(rel)
                continue
            m = re.search(r"^([\w./-]+\.proto): File not found\.", r.stderr, re.M)
            if m and not any(os.path.exists(os.path.join(x, m.group(1))) for x in roots):
                print("corpus: %s/%s left out: imports %s, which no installed package has"
                      % (gname, rel, m.group(1)))
                totals["skipped"] += 1
            else:
                problems.append("protoc rejects %s: %s" % (rel, r.stderr.strip()))
        totals["files"] += len(usable)

        # 2. one protoc run with both plugins, and the descriptor set
        fds_path = os.path.join(gdir, "all.fds")
        r = run([a.protoc] + inc + ["--plugin=protoc-gen-sgrpc=" + a.plugin,
                                    "--c_out=" + out, "--sgrpc_out=" + out,
                                    "--include_imports", "--descriptor_set_out=" + fds_path]
                + usable)
        if r.returncode != 0:
            problems.append("%s: protoc with protoc-c and protoc-gen-sgrpc failed: %s"
                            % (gname, r.stderr.strip()))
            continue
        fds = descriptor_pb2.FileDescriptorSet()
        with open(fds_path, "rb") as f:
            fds.ParseFromString(f.read())
        by_name = {fd.name: fd for fd in fds.file}

        # expected files and lines
        expected = []
        want_sgrpc = set()
        for rel in usable:
            fd = by_name[rel]
            base = rel[:-len(".proto")]
            if fd.service:
                want_sgrpc.add(base)
            for s in fd.service:
                full = (fd.package + "." if fd.package else "") + s.name
                expected.append("svc %s %s %d" % (full, rel, len(s.method)))
                for m in s.method:
                    expected.append("m /%s/%s %d %d %s %s" % (
                        full, m.name, int(m.client_streaming), int(m.server_streaming),
                        m.input_type.lstrip("."), m.output_type.lstrip(".")))
                totals["services"] += 1
                totals["methods"] += len(s.method)
        got_sgrpc = {p[len(out) + 1:-len(".sgrpc.h")]
                     for p in glob.glob(out + "/**/*.sgrpc.h", recursive=True)}
        if got_sgrpc != want_sgrpc:
            problems.append("%s: .sgrpc.h files %s, expected one for each file with a service %s"
                            % (gname, sorted(got_sgrpc), sorted(want_sgrpc)))
        for base in want_sgrpc:
            if not os.path.isfile(os.path.join(out, base + ".sgrpc.c")):
                problems.append("%s: %s.sgrpc.c missing" % (gname, base))

        # 3. compile every generated .c on its own
        objs, broken_headers = [], set()
        srcs = sorted(glob.glob(out + "/**/*.c", recursive=True))
        for src in srcs:
            rel_c = os.path.relpath(src, out)
            proto = re.sub(r"\.(pb-c|sgrpc)\.c$", ".proto", rel_c)
            obj = src[:-2] + ".o"
            r = run([a.cc] + cflags + ["-I" + out, "-c", src, "-o", obj])
            totals["c"] += 1
            defect = defects.get(proto)
            if r.returncode == 0:
                if defect and rel_c.endswith(".pb-c.c"):
                    problems.append("%s: known protoc-c defect (%s) no longer shows: update "
                                    "known_protoc_c_defects.txt" % (rel_c, defect[0]))
                objs.append(obj)
                continue
            if not defect or defect[1] not in r.stderr:
                problems.append("%s does not compile:\n%s" % (rel_c, r.stderr[-3000:]))
                continue
            seen_defects.add(proto)
            kind = defect[0]
            # the diagnostics must all point into protoc-c's output
            where = set(re.findall(r"^([^\s:]+\.(?:c|h)):\d+:\d+: error", r.stderr, re.M))
            if any(not w.endswith((".pb-c.h", ".pb-c.c")) for w in where):
                problems.append("%s: errors outside protoc-c's output: %s" % (rel_c, where))
                continue
            if kind == "missing-braces" and rel_c.endswith(".pb-c.c"):
                r = run([a.cc] + cflags + ["-Wno-missing-braces", "-I" + out, "-c", src,
                                           "-o", obj])
                if r.returncode != 0:
                    problems.append("%s: fails beyond missing braces:\n%s" % (rel_c, r.stderr))
                else:
                    objs.append(obj)
            elif kind == "field-base":
                broken_headers.add(proto[:-len(".proto")])
                if rel_c.endswith(".sgrpc.c"):
                    # compile against a header whose "base" field is renamed
                    shadow = os.path.join(gdir, "shadow")
                    hdr = proto[:-len(".proto")] + ".pb-c.h"
                    os.makedirs(os.path.dirname(os.path.join(shadow, hdr)) or shadow,
                                exist_ok=True)
                    with open(os.path.join(out, hdr), encoding="utf-8") as f:
                        text = f.read()
                    text = re.sub(r"^(\s+char \*)base;$", r"\1base_field;", text, flags=re.M)
                    with open(os.path.join(shadow, hdr), "w", encoding="utf-8") as f:
                        f.write(text)
                    # quoted includes look beside the includer first: copy the
                    # generated pair next to the patched header
                    stem = proto[:-len(".proto")]
                    for ext in (".sgrpc.h", ".sgrpc.c"):
                        shutil.copy(os.path.join(out, stem + ext), os.path.join(shadow, stem + ext))
                    r = run([a.cc] + cflags + ["-I" + shadow, "-I" + out, "-c",
                                               os.path.join(shadow, stem + ".sgrpc.c"), "-o", obj])
                    if r.returncode != 0:
                        problems.append("%s fails with protoc-c's field clash removed:\n%s"
                                        % (rel_c, r.stderr[-3000:]))
            else:
                problems.append("%s: unexpected defect handling %s" % (rel_c, kind))

        # 4. every header in one unit; every object in one program
        headers = sorted(glob.glob(out + "/**/*.sgrpc.h", recursive=True))
        services = []
        main_c = ['#include <stdio.h>', '#include <string.h>', '#include <sgrpc/rpc.h>',
                  '#include "google/protobuf/descriptor.pb-c.h"']
        for h in headers:
            rel_h = os.path.relpath(h, out)
            if rel_h[:-len(".sgrpc.h")] in broken_headers:
                continue
            main_c.append('#include "%s"' % rel_h)
            with open(h, encoding="utf-8") as f:
                services += re.findall(r"^extern const sgrpc_service_desc (\w+);", f.read(), re.M)
        main_c.append("static const sgrpc_service_desc *const all[] = {")
        main_c += ["  &%s," % s for s in services] + ["  NULL};"]
        main_c.append(r"""
static void on_request(sgrpc_server_call *call, const void *msg, void *ud) {
  (void)call, (void)msg, (void)ud;
}

int main(void) {
  sgrpc_router *router;
  sgrpc_handler h;
  size_t i, k;
  int bad = 0;
  memset(&h, 0, sizeof(h));
  h.on_request = on_request;
  if (sgrpc_router_new(&router, NULL) != 0) return 2;
  for (i = 0; all[i]; i++) {
    const sgrpc_service_desc *s = all[i];
    Google__Protobuf__FileDescriptorProto *fd;
    printf("svc %s %s %zu\n", s->name, s->file_name, s->n_methods);
    for (k = 0; k < s->n_methods; k++) {
      const sgrpc_method *m = &s->methods[k];
      const ProtobufCMessageDescriptor *in = m->request_type, *out = m->response_type;
      printf("m %s %d %d %s %s\n", m->path, m->client_streaming, m->server_streaming,
             in->name, out->name);
      if (sgrpc_router_add(router, m, &h) != 0 ||
          sgrpc_router_find(router, m->path, strlen(m->path)) != m) {
        fprintf(stderr, "router: %s\n", m->path);
        bad = 1;
      }
    }
    fd = google__protobuf__file_descriptor_proto__unpack(NULL, s->file_descriptor_len,
                                                          s->file_descriptor);
    if (!fd || strcmp(fd->name, s->file_name) != 0 || fd->source_code_info) {
      fprintf(stderr, "embedded descriptor of %s\n", s->name);
      bad = 1;
    } else {
      size_t found = 0;
      for (k = 0; k < fd->n_service; k++) {
        char full[512];
        snprintf(full, sizeof(full), "%s%s%s", fd->package ? fd->package : "",
                 fd->package && *fd->package ? "." : "", fd->service[k]->name);
        found += strcmp(full, s->name) == 0 && fd->service[k]->n_method == s->n_methods;
      }
      if (found != 1) {
        fprintf(stderr, "service %s not in its embedded descriptor\n", s->name);
        bad = 1;
      }
    }
    if (fd) google__protobuf__file_descriptor_proto__free_unpacked(fd, NULL);
  }
  sgrpc_router_del(router);
  return bad;
}
""")
        main_path = os.path.join(gdir, "corpus_main.c")
        with open(main_path, "w", encoding="utf-8") as f:
            f.write("\n".join(main_c))
        exe = os.path.join(gdir, "corpus_main")
        r = run([a.cc] + cflags + ["-I" + out, main_path, "-o", exe] + objs + a.link)
        if r.returncode != 0:
            problems.append("%s: the group does not link as one program:\n%s"
                            % (gname, r.stderr[-4000:]))
            continue
        r = run([exe])
        if r.returncode != 0:
            problems.append("%s: corpus program failed (%d): %s" % (gname, r.returncode,
                                                                    r.stderr))
        # methods of left-out (broken-header) services go too
        keep, skip = [], False
        for l in expected:
            if l.startswith("svc "):
                skip = any(l.split()[2] == b + ".proto" for b in broken_headers)
            if not skip:
                keep.append(l)
        want = sorted(keep)
        got = sorted(r.stdout.splitlines())
        if got != want:
            missing = sorted(set(want) - set(got))[:20]
            extra = sorted(set(got) - set(want))[:20]
            problems.append("%s: generated tables differ from protoc's descriptors\n"
                            "  missing: %s\n  unexpected: %s" % (gname, missing, extra))
        print("corpus: %s: %d files, %d .sgrpc.h, %d objects linked, %d services checked"
              % (gname, len(usable), len(headers), len(objs),
                 sum(1 for l in got if l.startswith("svc "))))

    for name in defects:
        if name not in seen_defects and not any(name in p for p in problems):
            if os.path.exists("/usr/share/grpc-proto/" + name) or \
               os.path.exists(os.path.join(GITALY, name)):
                problems.append("%s: listed protoc-c defect did not show" % name)
    print("corpus: %(files)d .proto files, %(skipped)d left out, %(c)d .c files compiled, "
          "%(services)d services / %(methods)d methods" % totals)
    for p in problems:
        print("FAIL: " + p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
