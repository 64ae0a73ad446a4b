// Baseline for the DNS benchmark: glibc's getaddrinfo in a pool of threads, as a C/C++ program
// without fern would resolve many names at once.
//
//   usage: dns_glibc_threads NAMES-FILE THREADS
// Resolves every name of the file (one per line; AF_INET, SOCK_STREAM) once, THREADS at a time,
// and prints "RESULT glibc_threads<T> <lookups/s> 1/s failures=<n> cpu_us_per_lookup=<µs>" (this
// process's user+system CPU per lookup).
#define _GNU_SOURCE
#include <netdb.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/resource.h>
#include <time.h>

static char **names;
static long count;
static atomic_long next, failures;

static void *worker(void *arg) {
    (void)arg;
    struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM};
    for (;;) {
        long i = atomic_fetch_add(&next, 1);
        if (i >= count) return NULL;
        struct addrinfo *res = NULL;
        if (getaddrinfo(names[i], NULL, &hints, &res) != 0 || !res)
            atomic_fetch_add(&failures, 1);
        else
            freeaddrinfo(res);
    }
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s NAMES-FILE THREADS\n", argv[0]);
        return 2;
    }
    FILE *f = fopen(argv[1], "r");
    if (!f) {
        perror(argv[1]);
        return 2;
    }
    long cap = 1024;
    names = malloc((size_t)cap * sizeof *names);
    char line[512];
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\r\n")] = 0;
        if (!*line) continue;
        if (count == cap) names = realloc(names, (size_t)(cap *= 2) * sizeof *names);
        names[count++] = strdup(line);
    }
    fclose(f);
    int threads = atoi(argv[2]);
    if (threads < 1 || threads > 4096) return 2;
    pthread_t *t = calloc((size_t)threads, sizeof *t);
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (int i = 0; i < threads; i++) pthread_create(&t[i], NULL, worker, NULL);
    for (int i = 0; i < threads; i++) pthread_join(t[i], NULL);
    clock_gettime(CLOCK_MONOTONIC, &b);
    double dt = (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9;
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double cpu = (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
                 (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
    printf("RESULT glibc_threads%d %.0f 1/s failures=%ld cpu_us_per_lookup=%.1f\n", threads,
           (double)count / dt, (long)failures, cpu / (double)count * 1e6);
    return 0;
}
