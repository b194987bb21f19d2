/*
 * bench-echo-nghttp2: the floor. A bare HTTP/2 echo server on nghttp2 and
 * epoll, with no gRPC layer: no protobuf, no routing, no header checks.
 * Whatever a request stream carries in DATA is sent back on the response
 * as it arrives, after ":status 200, content-type: application/grpc", and
 * the response ends with "grpc-status: 0" trailers once the request has
 * ended and everything was echoed. A gRPC client sees a correct echo of
 * both bench.Echo methods (the gRPC framing of its messages is echoed
 * byte for byte).
 *
 *   bench-echo-nghttp2 --port=N   (127.0.0.1; one thread; SIGTERM ends it)
 *
 * It is written the way a lean nghttp2 server is: one read buffer per
 * loop, mem_recv, mem_send into one write buffer per connection, one
 * write per turn, and nghttp2's own flow control (automatic WINDOW_UPDATE
 * with large windows).
 */
#define _GNU_SOURCE
#include <nghttp2/nghttp2.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define RBUF (64 * 1024)
#define WBUF_MAX (256 * 1024) /* stop asking nghttp2 for output beyond this */

typedef struct stream {
  int32_t id;
  uint8_t *buf; /* echo bytes not yet sent */
  size_t len, off, cap;
  int ended;    /* request END_STREAM seen */
  int deferred; /* data provider deferred, waiting for bytes */
  int trailers_sent;
} stream;

typedef struct conn {
  int fd;
  nghttp2_session *session;
  uint8_t *wbuf;
  size_t wlen, woff, wcap;
  int want_out; /* EPOLLOUT armed */
} conn;

static volatile sig_atomic_t stop;
static void on_signal(int s) {
  (void)s;
  stop = 1;
}

static ssize_t read_cb(nghttp2_session *session, int32_t stream_id, uint8_t *out, size_t length,
                       uint32_t *data_flags, nghttp2_data_source *source, void *ud) {
  stream *st = source->ptr;
  size_t n = st->len - st->off;
  (void)ud;
  (void)stream_id;
  if (n > length) n = length;
  memcpy(out, st->buf + st->off, n);
  st->off += n;
  if (st->off == st->len) st->off = st->len = 0;
  if (st->len == 0) {
    if (st->ended) {
      static const nghttp2_nv trailers[] = {
          {(uint8_t *)"grpc-status", (uint8_t *)"0", 11, 1, NGHTTP2_NV_FLAG_NONE}};
      *data_flags |= NGHTTP2_DATA_FLAG_EOF | NGHTTP2_DATA_FLAG_NO_END_STREAM;
      st->trailers_sent = 1;
      if (nghttp2_submit_trailer(session, st->id, trailers, 1) != 0) return NGHTTP2_ERR_CALLBACK_FAILURE;
      return (ssize_t)n;
    }
    if (n == 0) {
      st->deferred = 1;
      return NGHTTP2_ERR_DEFERRED;
    }
  }
  return (ssize_t)n;
}

static int on_begin_headers(nghttp2_session *session, const nghttp2_frame *frame, void *ud) {
  stream *st;
  (void)ud;
  if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST) return 0;
  st = calloc(1, sizeof(*st));
  if (!st) return NGHTTP2_ERR_CALLBACK_FAILURE;
  st->id = frame->hd.stream_id;
  nghttp2_session_set_stream_user_data(session, st->id, st);
  return 0;
}

static int on_frame_recv(nghttp2_session *session, const nghttp2_frame *frame, void *ud) {
  stream *st;
  (void)ud;
  if (frame->hd.type != NGHTTP2_HEADERS && frame->hd.type != NGHTTP2_DATA) return 0;
  st = nghttp2_session_get_stream_user_data(session, frame->hd.stream_id);
  if (!st) return 0;
  if (frame->hd.type == NGHTTP2_HEADERS && frame->headers.cat == NGHTTP2_HCAT_REQUEST) {
    static const nghttp2_nv hdrs[] = {
        {(uint8_t *)":status", (uint8_t *)"200", 7, 3, NGHTTP2_NV_FLAG_NONE},
        {(uint8_t *)"content-type", (uint8_t *)"application/grpc", 12, 16, NGHTTP2_NV_FLAG_NONE}};
    nghttp2_data_provider dp;
    dp.source.ptr = st;
    dp.read_callback = read_cb;
    if (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) st->ended = 1;
    if (nghttp2_submit_response(session, st->id, hdrs, 2, &dp) != 0)
      return NGHTTP2_ERR_CALLBACK_FAILURE;
    return 0;
  }
  if (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) {
    st->ended = 1;
    if (st->deferred) {
      st->deferred = 0;
      nghttp2_session_resume_data(session, st->id);
    }
  }
  return 0;
}

static int on_data_chunk(nghttp2_session *session, uint8_t flags, int32_t stream_id,
                         const uint8_t *data, size_t len, void *ud) {
  stream *st = nghttp2_session_get_stream_user_data(session, stream_id);
  (void)flags;
  (void)ud;
  if (!st) return 0;
  if (st->len + len > st->cap) {
    size_t cap = st->cap ? st->cap : 256;
    uint8_t *p;
    while (cap < st->len + len) cap *= 2;
    if (st->off) { /* compact first */
      memmove(st->buf, st->buf + st->off, st->len - st->off);
      st->len -= st->off;
      st->off = 0;
    }
    if (st->len + len > st->cap) {
      p = realloc(st->buf, cap);
      if (!p) return NGHTTP2_ERR_CALLBACK_FAILURE;
      st->buf = p;
      st->cap = cap;
    }
  }
  memcpy(st->buf + st->len, data, len);
  st->len += len;
  if (st->deferred) {
    st->deferred = 0;
    nghttp2_session_resume_data(session, stream_id);
  }
  return 0;
}

static int on_stream_close(nghttp2_session *session, int32_t stream_id, uint32_t code, void *ud) {
  stream *st = nghttp2_session_get_stream_user_data(session, stream_id);
  (void)code;
  (void)ud;
  if (!st) return 0;
  nghttp2_session_set_stream_user_data(session, stream_id, NULL);
  free(st->buf);
  free(st);
  return 0;
}

static nghttp2_session_callbacks *callbacks;

static void conn_free(int epfd, conn *c) {
  epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
  close(c->fd);
  nghttp2_session_del(c->session);
  free(c->wbuf);
  free(c);
}

/* Collects nghttp2's output and writes it. Returns -1 when the
 * connection should close. */
static int conn_flush(int epfd, conn *c) {
  for (;;) {
    while (c->wlen - c->woff < WBUF_MAX) {
      const uint8_t *p;
      ssize_t n = nghttp2_session_mem_send(c->session, &p);
      if (n < 0) return -1;
      if (n == 0) break;
      if (c->woff == c->wlen) c->woff = c->wlen = 0;
      if (c->wlen + (size_t)n > c->wcap) {
        size_t cap = c->wcap ? c->wcap : 16384;
        uint8_t *q;
        while (cap < c->wlen + (size_t)n) cap *= 2;
        q = realloc(c->wbuf, cap);
        if (!q) return -1;
        c->wbuf = q;
        c->wcap = cap;
      }
      memcpy(c->wbuf + c->wlen, p, (size_t)n);
      c->wlen += (size_t)n;
    }
    if (c->woff == c->wlen) break;
    {
      ssize_t w = send(c->fd, c->wbuf + c->woff, c->wlen - c->woff, MSG_NOSIGNAL);
      if (w < 0) {
        if (errno == EINTR) continue;
        if (errno != EAGAIN) return -1;
        break;
      }
      c->woff += (size_t)w;
      if (c->woff < c->wlen) break; /* socket full */
    }
  }
  {
    int need = c->woff < c->wlen;
    if (need != c->want_out) {
      struct epoll_event ev;
      ev.events = EPOLLIN | (need ? EPOLLOUT : 0);
      ev.data.ptr = c;
      epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev);
      c->want_out = need;
    }
  }
  if (!nghttp2_session_want_read(c->session) && !nghttp2_session_want_write(c->session) &&
      c->woff == c->wlen)
    return -1;
  return 0;
}

static void accept_all(int epfd, int lfd) {
  for (;;) {
    int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC), one = 1;
    conn *c;
    struct epoll_event ev;
    nghttp2_settings_entry iv[3];
    if (fd < 0) return;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    c = calloc(1, sizeof(*c));
    if (!c || nghttp2_session_server_new(&c->session, callbacks, c) != 0) {
      free(c);
      close(fd);
      continue;
    }
    c->fd = fd;
    iv[0].settings_id = NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS;
    iv[0].value = 1024;
    iv[1].settings_id = NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE;
    iv[1].value = 4u << 20;
    iv[2].settings_id = NGHTTP2_SETTINGS_MAX_FRAME_SIZE;
    iv[2].value = 16384;
    nghttp2_submit_settings(c->session, NGHTTP2_FLAG_NONE, iv, 3);
    nghttp2_session_set_local_window_size(c->session, NGHTTP2_FLAG_NONE, 0, 4 << 20);
    ev.events = EPOLLIN;
    ev.data.ptr = c;
    epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev);
    if (conn_flush(epfd, c) < 0) conn_free(epfd, c);
  }
}

int main(int argc, char **argv) {
  static uint8_t rbuf[RBUF];
  struct sockaddr_in sa;
  struct epoll_event evs[64], ev;
  int port = 50051, lfd, epfd, one = 1, i;
  struct sigaction sact;
  for (i = 1; i < argc; i++) {
    if (strncmp(argv[i], "--port=", 7) == 0) port = atoi(argv[i] + 7);
    else {
      fprintf(stderr, "usage: %s --port=N\n", argv[0]);
      return 2;
    }
  }
  memset(&sact, 0, sizeof(sact));
  sact.sa_handler = on_signal;
  sigaction(SIGTERM, &sact, NULL);
  sigaction(SIGINT, &sact, NULL);
  signal(SIGPIPE, SIG_IGN);

  nghttp2_session_callbacks_new(&callbacks);
  nghttp2_session_callbacks_set_on_begin_headers_callback(callbacks, on_begin_headers);
  nghttp2_session_callbacks_set_on_frame_recv_callback(callbacks, on_frame_recv);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(callbacks, on_data_chunk);
  nghttp2_session_callbacks_set_on_stream_close_callback(callbacks, on_stream_close);

  lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  memset(&sa, 0, sizeof(sa));
  sa.sin_family = AF_INET;
  sa.sin_port = htons((uint16_t)port);
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(lfd, 1024) != 0) {
    perror("bench-echo-nghttp2: listen");
    return 1;
  }
  epfd = epoll_create1(EPOLL_CLOEXEC);
  ev.events = EPOLLIN;
  ev.data.ptr = NULL; /* the listener */
  epoll_ctl(epfd, EPOLL_CTL_ADD, lfd, &ev);
  printf("bench-echo-nghttp2: listening on 127.0.0.1:%d\n", port);
  fflush(stdout);

  while (!stop) {
    int n = epoll_wait(epfd, evs, 64, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      break;
    }
    for (i = 0; i < n; i++) {
      conn *c = evs[i].data.ptr;
      int dead = 0;
      if (!c) {
        accept_all(epfd, lfd);
        continue;
      }
      if (evs[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) {
        for (;;) {
          ssize_t r = read(c->fd, rbuf, sizeof(rbuf));
          if (r < 0) {
            if (errno == EINTR) continue;
            if (errno != EAGAIN) dead = 1;
            break;
          }
          if (r == 0 || nghttp2_session_mem_recv(c->session, rbuf, (size_t)r) < 0) {
            dead = 1;
            break;
          }
          if ((size_t)r < sizeof(rbuf)) break;
        }
      }
      if (!dead && conn_flush(epfd, c) < 0) dead = 1;
      if (dead) conn_free(epfd, c);
    }
  }
  nghttp2_session_callbacks_del(callbacks);
  close(epfd);
  close(lfd);
  return 0;
}
