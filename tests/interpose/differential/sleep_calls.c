/* The sleep family: results, remaining time after a full sleep, absolute deadlines, clocks
   without sleep support, and invalid arguments. */
#include "common.h"

#include <threads.h>
#include <time.h>

int main(void) {
  struct timespec req = {0, 20000000}, rem = {7, 7};
  SHOW(nanosleep(&req, &rem));
  printf("rem untouched: %ld.%ld\n", (long)rem.tv_sec, rem.tv_nsec);
  SHOW(usleep(20000));
  SHOW(sleep(0));
  SHOW(usleep(0));
  req.tv_nsec = 0;
  SHOW(nanosleep(&req, NULL));

  struct timespec bad[] = {{0, -1}, {0, 1000000000}, {-1, 0}};
  for (int i = 0; i < 3; ++i) {
    SHOW(nanosleep(&bad[i], &rem));
    SHOW_ERR(clock_nanosleep(CLOCK_MONOTONIC, 0, &bad[i], NULL));
    SHOW_ERR(clock_nanosleep(CLOCK_REALTIME, TIMER_ABSTIME, &bad[i], NULL));
    SHOW(thrd_sleep(&bad[i], NULL));
  }
  volatile struct timespec* nul = NULL;
  SHOW(nanosleep((const struct timespec*)nul, NULL));
  SHOW_ERR(clock_nanosleep(CLOCK_MONOTONIC, 0, (const struct timespec*)nul, NULL));

  req.tv_sec = 0;
  req.tv_nsec = 1000;
  clockid_t clocks[] = {CLOCK_MONOTONIC,
                        CLOCK_REALTIME,
                        CLOCK_BOOTTIME,
                        CLOCK_TAI,
                        CLOCK_THREAD_CPUTIME_ID,
                        CLOCK_MONOTONIC_RAW,
                        CLOCK_REALTIME_COARSE,
                        CLOCK_MONOTONIC_COARSE,
                        12345,
                        -1};
  for (unsigned i = 0; i < sizeof clocks / sizeof clocks[0]; ++i) {
    printf("clock %d: ", (int)clocks[i]);
    SHOW_ERR(clock_nanosleep(clocks[i], 0, &req, NULL));
  }

  clockid_t absclocks[] = {CLOCK_MONOTONIC, CLOCK_REALTIME, CLOCK_BOOTTIME};
  for (unsigned i = 0; i < 3; ++i) {
    struct timespec now, until;
    clock_gettime(absclocks[i], &now);
    until = now;
    until.tv_nsec += 20000000;
    if (until.tv_nsec >= 1000000000) {
      until.tv_nsec -= 1000000000;
      ++until.tv_sec;
    }
    printf("abs clock %d: ", (int)absclocks[i]);
    SHOW_ERR(clock_nanosleep(absclocks[i], TIMER_ABSTIME, &until, NULL));
    struct timespec after;
    clock_gettime(absclocks[i], &after);
    printf("  reached: %d\n", after.tv_sec > until.tv_sec ||
                                  (after.tv_sec == until.tv_sec && after.tv_nsec >= until.tv_nsec));
    struct timespec past = {1, 0};
    SHOW_ERR(clock_nanosleep(absclocks[i], TIMER_ABSTIME, &past, NULL));
  }
  req.tv_sec = 0;
  req.tv_nsec = 10000000;
  SHOW(thrd_sleep(&req, &rem));
  errno = 0;
  SHOW(sleep(0));
  printf("errno: %d\n", errno);
  return 0;
}
