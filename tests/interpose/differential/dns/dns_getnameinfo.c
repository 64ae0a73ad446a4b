/* getnameinfo in the controlled environment of dns_diff.sh: names from the hosts file and from
   PTR records, numeric fallbacks, NI_NAMEREQD failures, NI_NOFQDN, services (NI_DGRAM,
   NI_NUMERICSERV, unknown ports), short buffers (EAI_OVERFLOW), bad families, lengths and
   flags. Prints what each call returned. */
#include "dns_common.h"

#include <sys/un.h>

static int case_no;

static void gni(const char* label, const struct sockaddr* sa, socklen_t salen, socklen_t hostlen,
                socklen_t servlen, int flags) {
  char host[NI_MAXHOST], serv[NI_MAXSERV];
  memset(host, '#', sizeof host);
  memset(serv, '#', sizeof serv);
  host[sizeof host - 1] = serv[sizeof serv - 1] = '\0';
  errno = 4242;
  int r =
      getnameinfo(sa, salen, hostlen ? host : NULL, hostlen, servlen ? serv : NULL, servlen, flags);
  int e = errno;
  printf("%d: %s hostlen %u servlen %u flags %#x -> %s", ++case_no, label, (unsigned)hostlen,
         (unsigned)servlen, flags, eai_name(r));
  if (r == EAI_SYSTEM) printf(" errno %s", errno_text(e));
  if (r == 0) {
    if (hostlen) printf(" host \"%s\"", host);
    if (servlen) printf(" serv \"%s\"", serv);
  }
  printf("\n");
}

static struct sockaddr_in v4(const char* text, int port) {
  struct sockaddr_in a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  inet_pton(AF_INET, text, &a.sin_addr);
  return a;
}

static struct sockaddr_in6 v6(const char* text, int port, unsigned scope) {
  struct sockaddr_in6 a;
  memset(&a, 0, sizeof a);
  a.sin6_family = AF_INET6;
  a.sin6_port = htons(port);
  a.sin6_scope_id = scope;
  inet_pton(AF_INET6, text, &a.sin6_addr);
  return a;
}

#define SA(x) ((const struct sockaddr*)&(x))

int main(void) {
  const socklen_t H = NI_MAXHOST, S = NI_MAXSERV, L4 = sizeof(struct sockaddr_in),
                  L6 = sizeof(struct sockaddr_in6);
  const char* v4s[] = {"127.0.0.1", "10.1.1.1", "10.1.1.2", "10.1.1.3",       "10.1.1.4",
                       "10.1.1.5",  "10.1.1.6", "10.2.0.1", "10.2.0.2",       "192.0.2.77",
                       "10.2.9.9",  "10.9.9.9", "0.0.0.0",  "255.255.255.255"};
  for (unsigned i = 0; i < sizeof v4s / sizeof v4s[0]; ++i) {
    struct sockaddr_in a = v4(v4s[i], 80);
    char label[64];
    snprintf(label, sizeof label, "%s:80", v4s[i]);
    gni(label, SA(a), L4, H, S, 0);
    gni(label, SA(a), L4, H, S, NI_NAMEREQD);
    gni(label, SA(a), L4, H, 0, NI_NOFQDN);
    gni(label, SA(a), L4, H, S, NI_NUMERICHOST | NI_NUMERICSERV);
  }
  const char* v6s[] = {
      "::1",       "fd00::1:5",       "fd00::1:6",       "fd00::2:1",       "fd00::2:2",
      "fd00::9:9", "::ffff:10.1.1.1", "::ffff:10.2.0.1", "::ffff:10.9.9.9", "::10.1.1.1",
      "::",        "2001:db8::10"};
  for (unsigned i = 0; i < sizeof v6s / sizeof v6s[0]; ++i) {
    struct sockaddr_in6 a = v6(v6s[i], 443, 0);
    char label[80];
    snprintf(label, sizeof label, "[%s]:443", v6s[i]);
    gni(label, SA(a), L6, H, S, 0);
    gni(label, SA(a), L6, H, S, NI_NAMEREQD);
    gni(label, SA(a), L6, H, S, NI_NUMERICHOST);
  }
  struct sockaddr_in6 ll = v6("fe80::1", 80, 1);
  gni("[fe80::1%1]:80", SA(ll), L6, H, S, 0);
  gni("[fe80::1%1]:80", SA(ll), L6, H, S, NI_NUMERICHOST);
  gni("[fe80::1%1]:80", SA(ll), L6, H, S, NI_NAMEREQD);
  ll.sin6_scope_id = 4000;
  gni("[fe80::1%4000]:80", SA(ll), L6, H, S, NI_NUMERICHOST);

  /* Services. */
  int ports[] = {0, 22, 53, 80, 443, 514, 65000};
  for (unsigned i = 0; i < sizeof ports / sizeof ports[0]; ++i) {
    struct sockaddr_in a = v4("10.1.1.1", ports[i]);
    char label[64];
    snprintf(label, sizeof label, "10.1.1.1:%d", ports[i]);
    gni(label, SA(a), L4, H, S, 0);
    gni(label, SA(a), L4, H, S, NI_DGRAM);
    gni(label, SA(a), L4, 0, S, NI_NUMERICSERV);
    gni(label, SA(a), L4, 0, S, NI_DGRAM);
  }

  /* Short buffers: names, numeric hosts, services, and the exact fit. */
  struct sockaddr_in hf = v4("10.1.1.1", 80), dns = v4("10.2.0.1", 514), unk = v4("10.9.9.9", 80);
  socklen_t lens[] = {1, 2, 5, 8, 9, 13, 14, 15};
  for (unsigned i = 0; i < sizeof lens / sizeof lens[0]; ++i) {
    gni("10.1.1.1:80 (hostfile.test)", SA(hf), L4, lens[i], 0, 0);
    gni("10.2.0.1:514 (a.fern.test)", SA(dns), L4, lens[i], 0, 0);
    gni("10.9.9.9:80 (unknown)", SA(unk), L4, lens[i], 0, 0);
    gni("10.9.9.9:80 numeric", SA(unk), L4, lens[i], 0, NI_NUMERICHOST);
    gni("10.2.0.1:514 serv", SA(dns), L4, 0, lens[i] > 7 ? 7 : lens[i], 0);
    gni("10.2.0.1:514 dgram serv", SA(dns), L4, 0, lens[i] > 7 ? 7 : lens[i], NI_DGRAM);
  }
  struct sockaddr_in6 v6hf = v6("fd00::2:1", 80, 0);
  gni("[fd00::2:1]:80 hostlen 14", SA(v6hf), L6, 14, 0, 0);
  gni("[fd00::2:1]:80 hostlen 15", SA(v6hf), L6, 15, 0, 0);

  /* Nothing asked for, bad families, lengths and flags. */
  gni("10.1.1.1:80 nothing", SA(hf), L4, 0, 0, 0);
  gni("10.1.1.1:80 short salen", SA(hf), L4 - 1, H, S, 0);
  gni("10.1.1.1:80 long salen", SA(hf), L4 + 8, H, S, 0);
  gni("[fd00::2:1]:80 short salen", SA(v6hf), L6 - 1, H, S, 0);
  gni("10.1.1.1:80 bad flags", SA(hf), L4, H, S, 0x4000);
  gni("10.1.1.1:80 NI_NUMERICHOST|NI_NAMEREQD", SA(hf), L4, H, S, NI_NUMERICHOST | NI_NAMEREQD);
  struct sockaddr_in bad = hf;
  bad.sin_family = 99;
  gni("family 99", SA(bad), L4, H, S, 0);
  struct sockaddr_un un;
  memset(&un, 0, sizeof un);
  un.sun_family = AF_UNIX;
  strcpy(un.sun_path, "/tmp/sock");
  gni("unix /tmp/sock serv", SA(un), sizeof un, 0, S, 0);

  /* errno after a success is not compared: glibc sets it to 0, the shim preserves it (as every
     hook does; dns_test checks that). */
  return 0;
}
