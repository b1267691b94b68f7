/* A hostile function for kilnd's hostile-guest e2e test (static; runs as the function's command,
 * as root, inside its microVM). It serves HTTP on 127.0.0.1:9000 so kiln-init reports it ready:
 *   GET /attack?victim=ID&request=RID&seconds=S
 *                                    starts the attack in the background (answers at once);
 *                                    ID: another instance, RID: a request kilnd sent it
 *   GET /summary                     what the last attack did ("key=value" lines; "running=1"
 *                                    while it runs)
 *   anything else                    "idle"
 * The attack, bounded by S seconds (at most 120), in two phases. The first third: rounds of
 * forged and malformed frames only (so kilnd reads them with the instance's log budget
 * untouched). The rest: three processes at once:
 *   - frames: its own AF_VSOCK connections to the host (CID 2) on kilnd's event port, the one
 *     kiln-init connects to (kiln-init's default events endpoint vsock:2:10001; override with
 *     KILN_HOSTILE_EVENT_PORT): unknown frame types, malformed records, forged events (a hello
 *     carrying the victim's instance id, log lines naming the victim's request and a request
 *     kilnd never sent (with invalid UTF-8, a NUL and a terminal escape in them), a dropped
 *     count of 2^64-1), control frames kilnd never asked for (launch spec, status request,
 *     identity, shutdown) and replies to requests it never sent (ack, status), a maximal
 *     payload, a length over the cap, a bad magic, a bad version, a truncated frame (all in the
 *     first phase, every 100 ms); then log frames as fast as the host takes them (reconnecting
 *     whenever kilnd drops the stream);
 *   - connects: connect/close to the same port in a loop;
 *   - flood: stdout lines as fast as the pipe takes them.
 * Never sends exit or not-ready (those would end its own instance, which the test ends itself). */
#include <errno.h>
#include <linux/vm_sockets.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define SUMMARY "/tmp/hostile-summary"
#define MAX_PAYLOAD (256u * 1024u)

static unsigned event_port(void) {
  const char* p = getenv("KILN_HOSTILE_EVENT_PORT");
  return p && *p ? (unsigned)strtoul(p, NULL, 10) : 10001u;
}

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static int write_all(int fd, const char* p, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return -1;
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

static int vsock_connect(void) {
  int s = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (s < 0) return -1;
  struct sockaddr_vm a;
  memset(&a, 0, sizeof a);
  a.svm_family = AF_VSOCK;
  a.svm_cid = VMADDR_CID_HOST;
  a.svm_port = event_port();
  if (connect(s, (struct sockaddr*)&a, sizeof a) < 0) {
    close(s);
    return -1;
  }
  return s;
}

/* A frame: 'K' 'F' version type, u32 little-endian length, payload. */
static size_t frame(char* out, unsigned version, unsigned type, uint32_t len, const char* payload, size_t have) {
  out[0] = 'K';
  out[1] = 'F';
  out[2] = (char)version;
  out[3] = (char)type;
  for (int i = 0; i < 4; ++i) out[4 + i] = (char)((len >> (8 * i)) & 0xff);
  if (have) memcpy(out + 8, payload, have);
  return 8 + have;
}

/* A record entry: u8 key length, key, u32 little-endian value length, value. */
static size_t entry(char* out, const char* key, const char* value, size_t vlen) {
  size_t k = strlen(key);
  out[0] = (char)k;
  memcpy(out + 1, key, k);
  for (int i = 0; i < 4; ++i) out[1 + k + i] = (char)((vlen >> (8 * i)) & 0xff);
  memcpy(out + 5 + k, value, vlen);
  return 5 + k + vlen;
}
static size_t entry_s(char* out, const char* key, const char* value) { return entry(out, key, value, strlen(value)); }

static unsigned long long g_seq = 1;

/* A well-formed log record with `data` (its own seq, a stamp of now, a forged request id). */
static size_t log_record(char* out, const char* data, size_t dlen, const char* request) {
  char num[32];
  size_t n = 0;
  snprintf(num, sizeof num, "%llu", g_seq++);
  n += entry_s(out + n, "seq", num);
  struct timespec t;
  clock_gettime(CLOCK_REALTIME, &t);
  snprintf(num, sizeof num, "%llu", (unsigned long long)t.tv_sec * 1000000000ull + (unsigned long long)t.tv_nsec);
  n += entry_s(out + n, "ts", num);
  n += entry_s(out + n, "stream", "stdout");
  n += entry(out + n, "data", data, dlen);
  if (request) n += entry_s(out + n, "request", request);
  return n;
}

struct counters {
  unsigned long long rounds, frames, bytes, streams_dropped, connects, connect_failures, flood_lines;
};

/* Sends `len` bytes on *s; on a write error (kilnd dropped the stream) reconnects once. */
static int send_or_reconnect(int* s, const char* p, size_t len, struct counters* c) {
  if (*s >= 0 && write_all(*s, p, len) == 0) {
    c->frames++;
    c->bytes += len;
    return 0;
  }
  c->streams_dropped++;
  if (*s >= 0) close(*s);
  *s = vsock_connect();
  return -1;
}

static char buf[MAX_PAYLOAD + 4096], rec[MAX_PAYLOAD + 1024], big[MAX_PAYLOAD];

/* frame() into buf, then send_or_reconnect(). */
static int send_frame(int* s, unsigned version, unsigned type, uint32_t len, const char* payload, size_t have,
                      struct counters* c) {
  return send_or_reconnect(s, buf, frame(buf, version, type, len, payload, have), c);
}

/* One round of forged and malformed frames, on fresh connections. */
static const char* g_victim_request = "";

static void forged_round(const char* victim, struct counters* c) {
  int s = vsock_connect();
  if (s < 0) {
    c->connect_failures++;
    return;
  }
  size_t r;
  /* Forged events: a hello for the victim, a log line naming a request kilnd never sent,
   * an unknown type, a dropped count of 2^64-1. */
  r = 0;
  r += entry_s(rec + r, "seq", "1");
  r += entry_s(rec + r, "version", "hostile");
  r += entry_s(rec + r, "boot_id", "hostile");
  r += entry_s(rec + r, "instance_id", victim);
  r += entry_s(rec + r, "state", "waiting");
  send_frame(&s, 1, 16, (uint32_t)r, rec, r, c);
  char line[512];
  int ll = snprintf(line, sizeof line, "HOSTILE forged line for instance %s \xff\xfe\x1b[31m|", victim);
  line[ll++] = 0; /* a NUL inside the line */
  line[ll++] = '|';
  r = log_record(rec, line, (size_t)ll, "forged-request-kilnd-never-sent");
  send_frame(&s, 1, 19, (uint32_t)r, rec, r, c);
  r = log_record(rec, line, (size_t)ll, g_victim_request);
  send_frame(&s, 1, 19, (uint32_t)r, rec, r, c);
  send_frame(&s, 1, 99, 5, "junk!", 5, c);
  r = 0;
  r += entry_s(rec + r, "seq", "3");
  r += entry_s(rec + r, "count", "18446744073709551615");
  send_frame(&s, 1, 21, (uint32_t)r, rec, r, c);
  /* Control frames kilnd never asked for, and replies to requests it never sent. */
  static const unsigned control[] = {1, 2, 3, 4, 5, 6};
  for (size_t i = 0; i < sizeof control / sizeof control[0]; ++i) {
    r = 0;
    r += entry_s(rec + r, "ok", "1");
    r += entry_s(rec + r, "state", "ready");
    r += entry_s(rec + r, "instance_id", victim);
    send_frame(&s, 1, control[i], (uint32_t)r, rec, r, c);
  }
  /* Malformed records: a zero-length key, a value length past the end, a bad number. */
  send_frame(&s, 1, 19, 6, "\0\0\0\0\0\0", 6, c);
  send_frame(&s, 1, 19, 9, "\x03" "seq" "\xff\xff\xff\x7f" "1", 9, c);
  r = 0;
  r += entry_s(rec + r, "seq", "-1");
  r += entry_s(rec + r, "ts", "99999999999999999999999");
  send_frame(&s, 1, 19, (uint32_t)r, rec, r, c);
  /* A maximal payload: one log line filling the whole frame. */
  memset(big, 'B', sizeof big);
  r = log_record(rec, big, MAX_PAYLOAD - 200, NULL);
  send_frame(&s, 1, 19, (uint32_t)r, rec, r, c);
  /* Stream breakers, each on its own connection: a length over the cap, a bad magic, a bad
   * version, a truncated frame. */
  send_frame(&s, 1, 19, 0xffffffffu, NULL, 0, c);
  close(s);
  if ((s = vsock_connect()) >= 0) {
    memset(buf, 'X', 65536);
    send_or_reconnect(&s, buf, 65536, c);
    close(s);
  }
  if ((s = vsock_connect()) >= 0) {
    send_frame(&s, 7, 19, 4, "abcd", 4, c);
    close(s);
  }
  if ((s = vsock_connect()) >= 0) {
    send_frame(&s, 1, 19, 1000, "0123456789", 10, c);
    close(s);
  }
}

/* Phase one: rounds of forged and malformed frames; phase two: log frames as fast as the host
 * takes them (1 KiB lines). */
static void frames_attack(const char* victim, double phase2, double deadline, struct counters* c) {
  while (now_s() < phase2) {
    forged_round(victim, c);
    c->rounds++;
    usleep(100 * 1000);
  }
  int s = vsock_connect();
  memset(big, 'L', 1024);
  char line[128];
  int ll;
  size_t r;
  unsigned long long i = 0;
  while (now_s() < deadline) {
    ll = snprintf(line, sizeof line, "HOSTILE vsock line %llu ", i++);
    memcpy(big, line, (size_t)ll);
    r = log_record(rec, big, 1024, NULL);
    if (send_frame(&s, 1, 19, (uint32_t)r, rec, r, c) != 0 && s < 0) usleep(1000);
  }
  if (s >= 0) close(s);
}

static void wait_until(double t) {
  while (now_s() < t) usleep(10 * 1000);
}

static void connect_loop(double phase2, double deadline, struct counters* c) {
  wait_until(phase2);
  while (now_s() < deadline) {
    int s = vsock_connect();
    if (s < 0) {
      c->connect_failures++;
      usleep(1000);
      continue;
    }
    c->connects++;
    close(s);
  }
}

static void stdout_flood(double phase2, double deadline, struct counters* c) {
  char line[256];
  wait_until(phase2);
  while (now_s() < deadline) {
    for (int k = 0; k < 64; ++k) {
      int n = snprintf(line, sizeof line, "HOSTILE stdout flood line %llu ................................................\n",
                       c->flood_lines);
      if (write_all(1, line, (size_t)n) != 0) return;
      c->flood_lines++;
    }
  }
}

static void write_summary(const char* name, const struct counters* c, double seconds) {
  char path[64], text[640];
  snprintf(path, sizeof path, SUMMARY ".%s", name);
  int n = snprintf(text, sizeof text,
                   "%s_seconds=%.1f\n%s_rounds=%llu\n%s_frames=%llu\n%s_bytes=%llu\n%s_streams_dropped=%llu\n%s_connects=%llu\n"
                   "%s_connect_failures=%llu\n%s_flood_lines=%llu\n",
                   name, seconds, name, c->rounds, name, c->frames, name, c->bytes, name, c->streams_dropped, name, c->connects, name,
                   c->connect_failures, name, c->flood_lines);
  FILE* f = fopen(path, "w");
  if (f) {
    fwrite(text, 1, (size_t)n, f);
    fclose(f);
  }
}

/* One attacker process per mode, all bounded by the same deadline. */
static void attack(const char* victim, int seconds) {
  signal(SIGCHLD, SIG_DFL); /* the server ignores it; here the runners are waited for */
  const double start = now_s(), deadline = start + seconds, phase2 = start + seconds / 3.0;
  const char* names[] = {"frames", "connects", "flood"};
  pid_t pids[3];
  for (int m = 0; m < 3; ++m) {
    pids[m] = fork();
    if (pids[m] != 0) continue;
    struct counters c;
    memset(&c, 0, sizeof c);
    if (m == 0) frames_attack(victim, phase2, deadline, &c);
    if (m == 1) connect_loop(phase2, deadline, &c);
    if (m == 2) stdout_flood(phase2, deadline, &c);
    write_summary(names[m], &c, now_s() - start);
    _exit(0);
  }
  for (int m = 0; m < 3; ++m) {
    if (pids[m] > 0) waitpid(pids[m], NULL, 0);
  }
  FILE* f = fopen(SUMMARY ".done", "w");
  if (f) fclose(f);
}

/* The value of `key` in a request line's query, copied into out (letters, digits, '-', '_'). */
static void query_value(const char* req, const char* key, char* out, size_t cap) {
  out[0] = 0;
  const char* p = strstr(req, key);
  if (!p) return;
  p += strlen(key);
  size_t i = 0;
  while (i + 1 < cap && (p[i] == '-' || p[i] == '_' || (p[i] >= '0' && p[i] <= '9') || (p[i] >= 'a' && p[i] <= 'z') ||
                         (p[i] >= 'A' && p[i] <= 'Z'))) {
    out[i] = p[i];
    ++i;
  }
  out[i] = 0;
}

static void answer(int c, const char* body) {
  char head[256];
  int n = snprintf(head, sizeof head,
                   "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n",
                   strlen(body));
  write_all(c, head, (size_t)n);
  write_all(c, body, strlen(body));
}

static void summary(char* out, size_t cap) {
  size_t len = 0;
  const char* parts[] = {"frames", "connects", "flood"};
  for (int m = 0; m < 3; ++m) {
    char path[64];
    snprintf(path, sizeof path, SUMMARY ".%s", parts[m]);
    FILE* f = fopen(path, "r");
    if (!f) continue;
    len += fread(out + len, 1, cap - 1 - len, f);
    fclose(f);
  }
  out[len] = 0;
  FILE* done = fopen(SUMMARY ".done", "r");
  if (done) fclose(done);
  snprintf(out + len, cap - len, "running=%d\n", done ? 0 : 1);
}

int main(void) {
  signal(SIGPIPE, SIG_IGN);
  signal(SIGCHLD, SIG_IGN); /* attack runners are never waited for by the server */
  int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_port = htons(9000);
  a.sin_addr.s_addr = htonl(INADDR_ANY);
  if (l < 0 || bind(l, (struct sockaddr*)&a, sizeof a) < 0 || listen(l, 16) < 0) {
    perror("hostile-guest: listen on 9000");
    return 1;
  }
  fprintf(stderr, "hostile-guest: serving on 9000, event port %u\n", event_port());
  for (;;) {
    int c = accept(l, NULL, NULL);
    if (c < 0) continue;
    char req[4096];
    ssize_t n = read(c, req, sizeof req - 1);
    req[n > 0 ? n : 0] = 0;
    if (strncmp(req, "GET /attack", 11) == 0) {
      static char victim[128], request[128];
      char secs[16];
      query_value(req, "victim=", victim, sizeof victim);
      query_value(req, "request=", request, sizeof request);
      g_victim_request = request;
      query_value(req, "seconds=", secs, sizeof secs);
      int seconds = atoi(secs);
      if (seconds <= 0 || seconds > 120) seconds = 10;
      unlink(SUMMARY ".done");
      if (fork() == 0) {
        close(l);
        close(c);
        attack(victim, seconds);
        _exit(0);
      }
      answer(c, "attacking\n");
    } else if (strncmp(req, "GET /summary", 12) == 0) {
      char text[2048];
      summary(text, sizeof text);
      answer(c, text);
    } else {
      answer(c, "idle\n");
    }
    close(c);
  }
}
