// Load client for the TLS benchmark: the same load for every server under test.
//
//   usage: tls_load handshake PORT THREADS SECONDS
//          tls_load bulk      PORT CONNS   SECONDS [CHUNK]
//
// handshake: each thread loops connect -> full TLS handshake (no session resumption) -> one
//   1-byte echo (so the server has finished its side) -> close_notify -> close.
//   Prints "RESULT handshakes_per_s <n> 1/s" and the failures.
// bulk: CONNS connections, one thread each, after one handshake loop write CHUNK bytes (default
//   16 KiB) and read them back. Prints "RESULT bulk_mb_per_s <n> MB/s" (echoed bytes, 10^6).
// The client does not verify the server (the servers are what is measured). Bounded: every
// thread stops after SECONDS, and socket timeouts of 5 s end a stalled connection.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static SSL_CTX *ctx;
static int port;
static double seconds;
static size_t chunk = 16384;
static atomic_long done_count, fail_count, bytes;

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static SSL *open_tls(int *fdp) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return NULL;
    struct timeval tv = {.tv_sec = 5};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((unsigned short)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return NULL;
    }
    SSL *ssl = SSL_new(ctx);
    SSL_set_fd(ssl, fd);
    SSL_set_tlsext_host_name(ssl, "localhost");
    if (SSL_connect(ssl) != 1) {
        ERR_clear_error();
        SSL_free(ssl);
        close(fd);
        return NULL;
    }
    *fdp = fd;
    return ssl;
}

static void close_tls(SSL *ssl, int fd) {
    SSL_shutdown(ssl);
    ERR_clear_error();
    SSL_free(ssl);
    close(fd);
}

static void *handshake_loop(void *arg) {
    (void)arg;
    double end = now() + seconds;
    while (now() < end) {
        int fd;
        SSL *ssl = open_tls(&fd);
        char c = 'x';
        if (ssl && SSL_write(ssl, &c, 1) == 1 && SSL_read(ssl, &c, 1) == 1) {
            atomic_fetch_add(&done_count, 1);
        } else {
            atomic_fetch_add(&fail_count, 1);
            if (!ssl) usleep(1000);
        }
        if (ssl) close_tls(ssl, fd);
    }
    return NULL;
}

static void *bulk_loop(void *arg) {
    (void)arg;
    int fd;
    SSL *ssl = open_tls(&fd);
    if (!ssl) {
        atomic_fetch_add(&fail_count, 1);
        return NULL;
    }
    char *out = malloc(chunk), *in = malloc(chunk);
    memset(out, 'b', chunk);
    double end = now() + seconds;
    while (now() < end) {
        if (SSL_write(ssl, out, (int)chunk) != (int)chunk) {
            atomic_fetch_add(&fail_count, 1);
            break;
        }
        size_t got = 0;
        while (got < chunk) {
            int n = SSL_read(ssl, in + got, (int)(chunk - got));
            if (n <= 0) break;
            got += (size_t)n;
        }
        if (got != chunk || memcmp(in, out, chunk) != 0) {
            atomic_fetch_add(&fail_count, 1);
            break;
        }
        atomic_fetch_add(&bytes, (long)chunk);
    }
    close_tls(ssl, fd);
    free(out);
    free(in);
    return NULL;
}

int main(int argc, char **argv) {
    if (argc < 5 || (strcmp(argv[1], "handshake") && strcmp(argv[1], "bulk"))) {
        fprintf(stderr, "usage: %s handshake|bulk PORT THREADS SECONDS [CHUNK]\n", argv[0]);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    port = atoi(argv[2]);
    int threads = atoi(argv[3]);
    seconds = atof(argv[4]);
    if (argc > 5) chunk = (size_t)atol(argv[5]);
    if (threads < 1 || threads > 4096 || seconds <= 0 || chunk < 1 || chunk > (1u << 24)) {
        fprintf(stderr, "bad arguments\n");
        return 2;
    }
    ctx = SSL_CTX_new(TLS_client_method());
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
    int bulk = strcmp(argv[1], "bulk") == 0;
    pthread_t *t = calloc((size_t)threads, sizeof *t);
    double t0 = now();
    for (int i = 0; i < threads; i++)
        pthread_create(&t[i], NULL, bulk ? bulk_loop : handshake_loop, NULL);
    for (int i = 0; i < threads; i++) pthread_join(t[i], NULL);
    double dt = now() - t0;
    if (bulk)
        printf("RESULT bulk_mb_per_s %.1f MB/s failures=%ld\n", (double)bytes / dt / 1e6,
               (long)fail_count);
    else
        printf("RESULT handshakes_per_s %.0f 1/s failures=%ld\n", (double)done_count / dt,
               (long)fail_count);
    free(t);
    return fail_count > 0 && done_count == 0 && bytes == 0;
}
