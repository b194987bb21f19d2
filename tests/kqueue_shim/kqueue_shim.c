/*
 * kqueue-on-poll shim (see sys/event.h beside this file). Each kqueue is
 * an eventfd used only as a handle; its registrations live in a table
 * indexed by that descriptor. kevent() applies the changes, then builds a
 * pollfd array from the enabled descriptor filters (plus one signalfd)
 * and waits with poll() until a descriptor is ready, a timer is due or
 * the caller's timeout ends.
 */
#define _GNU_SOURCE
#include "sys/event.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <unistd.h>

#define SHIM_MAX_KQ 64

typedef struct shim_reg {
  uintptr_t ident;
  short filter;
  int enabled;
  int oneshot;
  intptr_t data;     /* EVFILT_TIMER: period in ms */
  int64_t next_fire; /* EVFILT_TIMER: CLOCK_MONOTONIC ns */
  int64_t sig_count; /* EVFILT_SIGNAL: deliveries not reported yet */
  void *udata;
} shim_reg;

typedef struct shim_kq {
  int used;
  shim_reg *regs;
  size_t n, cap;
  int sigfd;
  sigset_t sigs;
} shim_kq;

static shim_kq kqs[SHIM_MAX_KQ];

static int64_t shim_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int kqueue(void) {
  int fd = eventfd(0, EFD_CLOEXEC);
  shim_kq *k;
  if (fd < 0) return -1;
  if (fd >= SHIM_MAX_KQ) {
    close(fd);
    errno = EMFILE;
    return -1;
  }
  k = &kqs[fd];
  /* The descriptor number may be reused after close(): start clean. */
  free(k->regs);
  if (k->used && k->sigfd >= 0) close(k->sigfd);
  memset(k, 0, sizeof(*k));
  k->used = 1;
  k->sigfd = -1;
  sigemptyset(&k->sigs);
  return fd;
}

static shim_reg *find(shim_kq *k, uintptr_t ident, short filter) {
  size_t i;
  for (i = 0; i < k->n; i++)
    if (k->regs[i].ident == ident && k->regs[i].filter == filter) return &k->regs[i];
  return NULL;
}

static void drop(shim_kq *k, shim_reg *r) {
  size_t i = (size_t)(r - k->regs);
  k->regs[i] = k->regs[--k->n];
}

static int update_signals(shim_kq *k) {
  int fd = signalfd(k->sigfd, &k->sigs, SFD_NONBLOCK | SFD_CLOEXEC);
  if (fd < 0) return -1;
  k->sigfd = fd;
  return 0;
}

static int apply(shim_kq *k, const struct kevent *kev) {
  shim_reg *r = find(k, kev->ident, kev->filter);
  if (kev->flags & EV_DELETE) {
    if (!r) {
      errno = ENOENT;
      return -1;
    }
    if (r->filter == EVFILT_SIGNAL) {
      sigset_t one;
      sigemptyset(&one);
      sigaddset(&one, (int)r->ident);
      sigdelset(&k->sigs, (int)r->ident);
      update_signals(k);
      sigprocmask(SIG_UNBLOCK, &one, NULL);
    }
    drop(k, r);
    return 0;
  }
  if (kev->flags & EV_ADD) {
    if (!r) {
      if (k->n == k->cap) {
        size_t cap = k->cap ? k->cap * 2 : 16;
        shim_reg *regs = realloc(k->regs, cap * sizeof(*regs));
        if (!regs) {
          errno = ENOMEM;
          return -1;
        }
        k->regs = regs;
        k->cap = cap;
      }
      r = &k->regs[k->n++];
      memset(r, 0, sizeof(*r));
      r->ident = kev->ident;
      r->filter = kev->filter;
      if (r->filter == EVFILT_SIGNAL) {
        sigset_t one;
        sigemptyset(&one);
        sigaddset(&one, (int)r->ident);
        sigprocmask(SIG_BLOCK, &one, NULL);
        sigaddset(&k->sigs, (int)r->ident);
        if (update_signals(k) != 0) {
          drop(k, r);
          return -1;
        }
      }
    }
    r->enabled = 1;
    r->oneshot = (kev->flags & EV_ONESHOT) != 0;
    r->udata = kev->udata;
    r->data = kev->data;
    if (r->filter == EVFILT_TIMER) r->next_fire = shim_now() + (int64_t)kev->data * 1000000;
  }
  if (!r) {
    errno = ENOENT;
    return -1;
  }
  if (kev->flags & EV_ENABLE) r->enabled = 1;
  if (kev->flags & EV_DISABLE) r->enabled = 0;
  return 0;
}

int kevent(int kq, const struct kevent *changes, int nchanges, struct kevent *out, int nevents,
           const struct timespec *timeout) {
  shim_kq *k;
  struct pollfd *pfds;
  size_t *owner, np = 0, i;
  int64_t now, wait_ns, deadline;
  int nout = 0, rv, t;

  if (kq < 0 || kq >= SHIM_MAX_KQ || !kqs[kq].used) {
    errno = EBADF;
    return -1;
  }
  k = &kqs[kq];
  for (t = 0; t < nchanges; t++)
    if (apply(k, &changes[t]) != 0) {
      if (nout < nevents) { /* BSD reports failed changes as EV_ERROR events */
        out[nout] = changes[t];
        out[nout].flags = EV_ERROR;
        out[nout].data = errno;
        nout++;
      } else {
        return -1;
      }
    }
  if (nevents <= 0 || nout > 0) return nout;

  deadline = timeout ? shim_now() + (int64_t)timeout->tv_sec * 1000000000 + timeout->tv_nsec
                     : INT64_MAX;
  pfds = calloc(k->n + 1, sizeof(*pfds));
  owner = calloc(k->n + 1, sizeof(*owner));
  if (!pfds || !owner) {
    free(pfds);
    free(owner);
    errno = ENOMEM;
    return -1;
  }
  for (;;) {
    int64_t first = deadline;
    np = 0;
    for (i = 0; i < k->n; i++) {
      shim_reg *r = &k->regs[i];
      if (!r->enabled) continue;
      if (r->filter == EVFILT_READ || r->filter == EVFILT_WRITE) {
        pfds[np].fd = (int)r->ident;
        pfds[np].events = r->filter == EVFILT_READ ? POLLIN : POLLOUT;
        pfds[np].revents = 0;
        owner[np++] = i;
      } else if (r->filter == EVFILT_TIMER && r->next_fire < first) {
        first = r->next_fire;
      }
    }
    if (k->sigfd >= 0) {
      pfds[np].fd = k->sigfd;
      pfds[np].events = POLLIN;
      pfds[np].revents = 0;
      owner[np++] = (size_t)-1;
    }
    now = shim_now();
    wait_ns = first == INT64_MAX ? -1 : (first > now ? first - now : 0);
    rv = poll(pfds, np, wait_ns < 0 ? -1 : (int)((wait_ns + 999999) / 1000000));
    if (rv < 0) {
      free(pfds);
      free(owner);
      return -1; /* EINTR included, as kevent does */
    }
    /* Collect ready descriptors, drop registrations of closed ones. */
    for (i = 0; i < np && nout < nevents; i++) {
      shim_reg *r;
      if (!pfds[i].revents) continue;
      if (owner[i] == (size_t)-1) {
        struct signalfd_siginfo si;
        while (read(k->sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
          shim_reg *sr = find(k, si.ssi_signo, EVFILT_SIGNAL);
          if (sr) sr->sig_count++;
        }
        continue;
      }
      r = &k->regs[owner[i]];
      if (pfds[i].revents & POLLNVAL) {
        r->enabled = 0;
        continue;
      }
      out[nout].ident = r->ident;
      out[nout].filter = r->filter;
      out[nout].flags = (pfds[i].revents & (POLLHUP | POLLERR)) ? EV_EOF : 0;
      out[nout].fflags = 0;
      out[nout].data = 0;
      out[nout].udata = r->udata;
      nout++;
      if (r->oneshot) r->enabled = 0;
    }
    now = shim_now();
    for (i = 0; i < k->n && nout < nevents; i++) {
      shim_reg *r = &k->regs[i];
      if (!r->enabled) continue;
      if (r->filter == EVFILT_TIMER && r->next_fire <= now) {
        out[nout].ident = r->ident;
        out[nout].filter = EVFILT_TIMER;
        out[nout].flags = 0;
        out[nout].fflags = 0;
        out[nout].data = 1;
        out[nout].udata = r->udata;
        nout++;
        if (r->oneshot) r->enabled = 0;
        else r->next_fire = now + (int64_t)r->data * 1000000;
      } else if (r->filter == EVFILT_SIGNAL && r->sig_count > 0) {
        out[nout].ident = r->ident;
        out[nout].filter = EVFILT_SIGNAL;
        out[nout].flags = 0;
        out[nout].fflags = 0;
        out[nout].data = (intptr_t)r->sig_count;
        out[nout].udata = r->udata;
        r->sig_count = 0;
        nout++;
      }
    }
    /* One-shot registrations are deleted once reported, as on BSD. */
    for (i = k->n; i-- > 0;)
      if (k->regs[i].oneshot && !k->regs[i].enabled) drop(k, &k->regs[i]);
    if (nout > 0 || shim_now() >= deadline) break;
  }
  free(pfds);
  free(owner);
  return nout;
}
