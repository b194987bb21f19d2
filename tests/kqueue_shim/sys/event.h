/*
 * kqueue-on-poll shim for Linux test builds: the subset of BSD
 * <sys/event.h> the sgrpc kqueue adapter uses, so the adapter's plain BSD
 * code compiles and runs here. Not a general kqueue: one thread, level-
 * triggered EVFILT_READ/EVFILT_WRITE on descriptors, EVFILT_TIMER in
 * milliseconds, EVFILT_SIGNAL through a signalfd (a signal registered here
 * is blocked in the calling thread so the signalfd sees it), EV_ADD,
 * EV_DELETE, EV_ENABLE, EV_DISABLE, EV_ONESHOT. Registrations of a closed
 * descriptor must be deleted before the descriptor number is reused.
 */
#ifndef SGRPC_KQUEUE_SHIM_SYS_EVENT_H
#define SGRPC_KQUEUE_SHIM_SYS_EVENT_H

#include <stdint.h>
#include <time.h>

#define EVFILT_READ (-1)
#define EVFILT_WRITE (-2)
#define EVFILT_SIGNAL (-6)
#define EVFILT_TIMER (-7)

#define EV_ADD 0x0001
#define EV_DELETE 0x0002
#define EV_ENABLE 0x0004
#define EV_DISABLE 0x0008
#define EV_ONESHOT 0x0010
#define EV_CLEAR 0x0020
#define EV_RECEIPT 0x0040
#define EV_ERROR 0x4000
#define EV_EOF 0x8000

struct kevent {
  uintptr_t ident;
  short filter;
  unsigned short flags;
  unsigned int fflags;
  intptr_t data;
  void *udata;
};

#define EV_SET(kevp, a, b, c, d, e, f)                                                             \
  do {                                                                                             \
    struct kevent *ev__ = (kevp);                                                                  \
    ev__->ident = (a);                                                                             \
    ev__->filter = (short)(b);                                                                     \
    ev__->flags = (unsigned short)(c);                                                             \
    ev__->fflags = (d);                                                                            \
    ev__->data = (e);                                                                              \
    ev__->udata = (f);                                                                             \
  } while (0)

int kqueue(void);
int kevent(int kq, const struct kevent *changelist, int nchanges, struct kevent *eventlist,
           int nevents, const struct timespec *timeout);

#endif
