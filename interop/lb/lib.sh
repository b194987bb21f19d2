# Shared by the drivers of interop/lb (sourced): starts and stops a set of
# backends that report their instance id, and checks the output of a
# load-balancing client run.
#
# Backends: any program taking "--port=P --server_id=ID" that prints
# "listening on port N" once serving on 127.0.0.1 and exits when P is taken
# (sgrpc-interop-server, go-lb-server); P is picked below 32768. Their
# instance ids are s1, s2, ...
#
#   lb_start_backends BIN N   starts N; sets lb_pids[], lb_ports[], lb_ids[]
#   lb_addrs                  prints "127.0.0.1:P1,127.0.0.1:P2,..."
#   lb_stop_backends          SIGTERM, bounded wait, then SIGKILL; returns 1
#                             (after naming it) when one did not exit 0
#   lb_reap_killed K          waits for backend K (0-based), which must have
#                             died of SIGKILL; returns 1 otherwise
#   lb_check OUT KILLED_ID CONCURRENCY ALLOW_FAILURES
#                             checks a client's "rr:" lines (see below)
#
# The caller sets lb_work (a scratch directory) and defines lb_fail MSG
# (prints and exits); every wait is bounded.

lb_pids=() lb_ports=() lb_ids=()

lb_start_backends() {
  local bin=$1 n=$2 k port try pid
  for k in $(seq "$n"); do
    # a port below 32768, another when it is taken (the backend exits)
    port=
    for _ in $(seq 20); do
      try=$((20000 + RANDOM % 12000))
      "$bin" --port="$try" --server_id="s$k" > "$lb_work/backend-s$k.log" 2>&1 &
      pid=$!
      for _ in $(seq 150); do
        port=$(sed -n 's/.*listening on port \([0-9][0-9]*\).*/\1/p' "$lb_work/backend-s$k.log" 2>/dev/null | head -n 1)
        [ -n "$port" ] && break
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
      done
      [ -n "$port" ] && break
      kill -KILL "$pid" 2>/dev/null
      wait "$pid" 2>/dev/null
    done
    [ -n "$port" ] || lb_fail "backend s$k ($bin) did not start: $(tail -n 3 "$lb_work/backend-s$k.log")"
    lb_pids+=("$pid")
    lb_ids+=("s$k")
    lb_ports+=("$port")
  done
}

lb_addrs() {
  local k out=
  for k in "${!lb_ports[@]}"; do out="$out${out:+,}127.0.0.1:${lb_ports[$k]}"; done
  echo "$out"
}

lb_stop_backends() {
  local k rc bad=0
  for k in "${!lb_pids[@]}"; do [ -n "${lb_pids[$k]}" ] && kill -TERM "${lb_pids[$k]}" 2>/dev/null; done
  for k in "${!lb_pids[@]}"; do
    [ -n "${lb_pids[$k]}" ] || continue
    for _ in $(seq 50); do kill -0 "${lb_pids[$k]}" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "${lb_pids[$k]}" 2>/dev/null
    wait "${lb_pids[$k]}" 2>/dev/null
    rc=$?
    if [ $rc != 0 ]; then
      echo "lb: backend ${lb_ids[$k]} exit status $rc after SIGTERM: $(tail -n 3 "$lb_work/backend-${lb_ids[$k]}.log" 2>/dev/null | tr '\n' ' ')"
      bad=1
    fi
  done
  lb_pids=()
  return $bad
}

lb_reap_killed() {
  local k=$1 rc
  # bounded: a backend nobody killed is still running after 5 s
  for _ in $(seq 50); do kill -0 "${lb_pids[$k]}" 2>/dev/null || break; sleep 0.1; done
  kill -0 "${lb_pids[$k]}" 2>/dev/null && return 1
  wait "${lb_pids[$k]}" 2>/dev/null
  rc=$?
  lb_pids[k]=
  [ $rc = 137 ]
}

# lb_check OUT KILLED_ID CONCURRENCY ALLOW_FAILURES
# OUT holds the client's lines:
#   rr: served PHASE ID COUNT   PHASE: before (started and ended before the
#                               kill), inflight (started before, ended
#                               after), after (started after the kill)
#   rr: failed INDEX PHASE CODE SAFE MESSAGE   SAFE: retry_safe when the
#                               client knows the server never processed
#                               the call (sgrpc's retry_safe), else -
#   rr: total ok=N failed=M
# Checks: every backend of lb_ids served within 10% of an even share of the
# "before" calls; with KILLED_ID (empty: no kill), the survivors share the
# "after" calls within 10% and the killed one served none of them; failed
# calls: none (ALLOW_FAILURES=0); with 1, only "inflight" ones and
# at most CONCURRENCY (the calls that can have been in flight at the kill);
# with 2, also any number of retry_safe ones in any phase (a proxy that
# refused the stream: a transparent retry would have saved those); with
# "window:N", any failure of a call whose index is below N (a proxy that
# keeps sending calls to the dead backend until it notices), none later.
# Prints a summary; calls lb_fail on any violation.
lb_check() {
  local out=$1 killed=$2 conc=$3 allow=$4 msg
  msg=$(awk -v ids="${lb_ids[*]}" -v killed="$killed" -v conc="$conc" -v allow="$allow" '
    function share(phase, want, n,   i, t, id, lo, hi, s) {
      t = 0
      for (i = 1; i <= n; i++) t += cnt[phase, want[i]]
      if (t < 30 * n) { bad = bad sprintf("%s: only %d calls; ", phase, t); return }
      lo = t / n * 0.9; hi = t / n * 1.1
      s = ""
      for (i = 1; i <= n; i++) {
        id = want[i]
        s = s sprintf(" %s=%d", id, cnt[phase, id])
        if (cnt[phase, id] < lo || cnt[phase, id] > hi)
          bad = bad sprintf("%s: %s served %d of %d, outside %.0f..%.0f; ", phase, id, cnt[phase, id], t, lo, hi)
      }
      sum = sum sprintf("%s:%s; ", phase, s)
    }
    $1 == "rr:" && $2 == "served" { cnt[$3, $4] += $5; known[$4] = 1 }
    $1 == "rr:" && $2 == "failed" {
      nf++; fl = fl " #" $3 "(" $4 "," $5 "," $6 ")"
      if (allow ~ /^window:/) { if ($3 + 0 >= substr(allow, 8) + 0) late++ }
      else if (allow == 2 && $6 == "retry_safe") nsafe++
      else { if ($4 != "inflight") late++; nin++ }
    }
    $1 == "rr:" && $2 == "total" { total = $0 }
    END {
      n = split(ids, all, " ")
      for (id in known) { ok = 0; for (i = 1; i <= n; i++) if (all[i] == id) ok = 1
                          if (!ok) bad = bad sprintf("unknown server id \"%s\"; ", id) }
      if (total == "") bad = bad "no \"rr: total\" line; "
      share("before", all, n)
      if (killed != "") {
        m = 0
        for (i = 1; i <= n; i++) if (all[i] != killed) surv[++m] = all[i]
        share("after", surv, m)
        if (cnt["after", killed] > 0) bad = bad sprintf("killed %s served %d later calls; ", killed, cnt["after", killed])
      }
      if (nf > 0 && allow == "0") bad = bad sprintf("%d failed calls:%s; ", nf, fl)
      if (allow ~ /^window:/ && late > 0) bad = bad sprintf("%d calls from #%s on failed:%s; ", late, substr(allow, 8), fl)
      if ((allow == "1" || allow == "2") && late > 0) bad = bad sprintf("%d calls not in flight at the kill failed:%s; ", late, fl)
      if ((allow == "1" || allow == "2") && nin > conc) bad = bad sprintf("%d failed calls, more than the %d in flight:%s; ", nin, conc, fl)
      printf "%s%s failed calls: %d%s\n", sum, total, nf + 0, (nf ? " (" fl " )" : "")
      if (bad != "") { print "VIOLATION " bad; exit 1 }
    }' "$out")
  local rc=$?
  echo "lb: $msg"
  [ $rc = 0 ] || lb_fail "load-balancing check failed"
}
