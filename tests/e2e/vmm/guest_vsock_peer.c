/* Guest-side vsock peer for kiln-vmm's e2e test (runs inside the microVM, static).
 *   vsock-peer serve PORT        accept one connection, send back "echo:" + everything read
 *   vsock-peer connect PORT MSG  connect to the host (CID 2), send MSG, print the reply */
#include <linux/vm_sockets.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int write_all(int fd, const char* p, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w <= 0) return -1;
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

int main(int argc, char** argv) {
  if (argc < 3) return 2;
  struct sockaddr_vm addr;
  memset(&addr, 0, sizeof addr);
  addr.svm_family = AF_VSOCK;
  addr.svm_port = (unsigned)atoi(argv[2]);
  char buf[65536];
  if (strcmp(argv[1], "serve") == 0) {
    int l = socket(AF_VSOCK, SOCK_STREAM, 0);
    addr.svm_cid = VMADDR_CID_ANY;
    if (l < 0 || bind(l, (struct sockaddr*)&addr, sizeof addr) < 0 || listen(l, 1) < 0) { perror("vsock listen"); return 1; }
    printf("vsock-peer: listening on %s\n", argv[2]);
    fflush(stdout);
    int c = accept(l, NULL, NULL);
    if (c < 0) { perror("accept"); return 1; }
    size_t total = 0;
    ssize_t n;
    write_all(c, "echo:", 5);
    while ((n = read(c, buf, sizeof buf)) > 0) {
      if (write_all(c, buf, (size_t)n) < 0) break;
      total += (size_t)n;
    }
    printf("vsock-peer: echoed %zu bytes\n", total);
    close(c);
    return 0;
  }
  if (strcmp(argv[1], "connect") == 0 && argc >= 4) {
    int s = socket(AF_VSOCK, SOCK_STREAM, 0);
    addr.svm_cid = VMADDR_CID_HOST;
    if (s < 0 || connect(s, (struct sockaddr*)&addr, sizeof addr) < 0) { perror("vsock connect"); return 1; }
    write_all(s, argv[3], strlen(argv[3]));
    shutdown(s, SHUT_WR);
    size_t len = 0;
    ssize_t n;
    while (len < sizeof buf - 1 && (n = read(s, buf + len, sizeof buf - 1 - len)) > 0) len += (size_t)n;
    buf[len] = 0;
    printf("vsock-peer: reply: %s\n", buf);
    return 0;
  }
  return 2;
}
