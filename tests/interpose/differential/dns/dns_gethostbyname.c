/* The gethostbyname family in the controlled environment of dns_diff.sh: gethostbyname,
   gethostbyname2, gethostbyname_r, gethostbyname2_r, gethostbyaddr, gethostbyaddr_r on numeric
   names, the hosts file, DNS (A, AAAA, CNAME, PTR, the search list, NXDOMAIN, SERVFAIL), bad
   families and lengths; the _r contract (return value, *result, h_errno, ERANGE, everything in
   the caller's buffer, unaligned buffers); h_errno and errno of the non-reentrant forms after a
   failure, and their result storage. */
#include "dns_common.h"

#include <ctype.h>

static int case_no;

static const char* ret_name(int r) {
  return r == 0 ? "0" : strerrorname_np(r);
}

/* "yes" if every pointer of he lies in [buf, buf + len). */
static const char* in_buffer(const struct hostent* he, const char* buf, size_t len) {
#define IN(p) ((const char*)(p) >= buf && (const char*)(p) < buf + len)
  if (!IN(he->h_name) || !IN(he->h_aliases) || !IN(he->h_addr_list)) return "no";
  for (char** a = he->h_aliases; *a; ++a)
    if (!IN(a) || !IN(*a)) return "no";
  for (char** a = he->h_addr_list; *a; ++a)
    if (!IN(a) || !IN(*a)) return "no";
  return "yes";
#undef IN
}

/* h_errno is printed only after a failure, errno only with NETDB_INTERNAL: all that POSIX and
   glibc promise. After a success glibc leaves them as its NSS chain left them (errno 0;
   h_errno HOST_NOT_FOUND when the hosts file missed and DNS answered), the shim untouched. */
static void show_static(const char* call, struct hostent* he, int h, int e) {
  printf("%d: %s -> %s", ++case_no, call, he ? "hostent" : "NULL");
  if (!he) printf(" h_errno %s", herr_name(h));
  if (!he && h == NETDB_INTERNAL) printf(" errno %s", errno_text(e));
  printf("\n");
  if (he) print_hostent(he);
}

static void by_name(const char* name) {
  char call[128];
  snprintf(call, sizeof call, "gethostbyname(\"%s\")", name);
  h_errno = 4242;
  errno = 4242;
  struct hostent* he = gethostbyname(name);
  int e = errno, h = h_errno;
  show_static(call, he, h, e);
}

static void by_name2(const char* name, int af) {
  char call[128];
  snprintf(call, sizeof call, "gethostbyname2(\"%s\", %s)", name, family_name(af));
  h_errno = 4242;
  errno = 4242;
  struct hostent* he = gethostbyname2(name, af);
  int e = errno, h = h_errno;
  show_static(call, he, h, e);
}

static void by_addr(const char* text, int af, socklen_t len) {
  unsigned char addr[16] = {0};
  inet_pton(strchr(text, ':') ? AF_INET6 : AF_INET, text, addr);
  char call[128];
  snprintf(call, sizeof call, "gethostbyaddr(%s, %u, %s)", text, (unsigned)len, family_name(af));
  h_errno = 4242;
  errno = 4242;
  struct hostent* he = gethostbyaddr(addr, len, af);
  int e = errno, h = h_errno;
  show_static(call, he, h, e);
}

static char big[8192 + 64];

static void show_r(const char* call, int r, struct hostent* result, struct hostent* ret, int h,
                   const char* buf, size_t len) {
  printf("%d: %s -> %s result %s", ++case_no, call, ret_name(r),
         result == ret ? "ret"
         : result      ? "other"
                       : "NULL");
  if (result == ret)
    printf(" in buffer %s", in_buffer(ret, buf, len));
  else
    printf(" h_errno %s", herr_name(h));
  printf("\n");
  if (result == ret) print_hostent(ret);
}

/* af < 0: gethostbyname_r. Returns 1 if the name was found. */
static int by_name_r(const char* name, int af, size_t len, int offset) {
  struct hostent ret, *result = (struct hostent*)1;
  int h = 4242;
  char* buf = big + offset;
  int r = af < 0 ? gethostbyname_r(name, &ret, buf, len, &result, &h)
                 : gethostbyname2_r(name, af, &ret, buf, len, &result, &h);
  char call[160];
  if (af < 0)
    snprintf(call, sizeof call, "gethostbyname_r(\"%s\", buflen %zu at +%d)", name, len, offset);
  else
    snprintf(call, sizeof call, "gethostbyname2_r(\"%s\", %s, buflen %zu at +%d)", name,
             family_name(af), len, offset);
  show_r(call, r, result, &ret, h, buf, len);
  return result == &ret;
}

static int by_addr_r(const char* text, int af, socklen_t alen, size_t len, int offset) {
  unsigned char addr[16] = {0};
  inet_pton(strchr(text, ':') ? AF_INET6 : AF_INET, text, addr);
  struct hostent ret, *result = (struct hostent*)1;
  int h = 4242;
  char* buf = big + offset;
  int r = gethostbyaddr_r(addr, alen, af, &ret, buf, len, &result, &h);
  char call[160];
  snprintf(call, sizeof call, "gethostbyaddr_r(%s, %u, %s, buflen %zu at +%d)", text,
           (unsigned)alen, family_name(af), len, offset);
  show_r(call, r, result, &ret, h, buf, len);
  return result == &ret;
}

int main(void) {
  const char* names[] = {"localhost",
                         "ip6-localhost",
                         "hostfile.test",
                         "hf-alias1",
                         "HF-ALIAS2",
                         "dup-of-hostfile",
                         "multi.test",
                         "multi6-alias",
                         "v6only.test",
                         "mixed.case.test",
                         "spaced.test",
                         "a.fern.test",
                         "aaaa.fern.test",
                         "both.fern.test",
                         "cname.fern.test",
                         "a",
                         "cname",
                         "a.fern.test.",
                         "A.FERN.TEST",
                         "nothere.fern.test",
                         "nothere",
                         "servfail.fern.test",
                         "",
                         "10.1.1.1",
                         "10.1",
                         "127.1",
                         "0x7f.1",
                         "1.2.3.4.",
                         "::1",
                         "fd00::1:5",
                         "::ffff:1.2.3.4",
                         "abc",
                         "de:ad",
                         "1.2.3.4",
                         "300.1.1.1"};
  const unsigned n = sizeof names / sizeof names[0];
  for (unsigned i = 0; i < n; ++i) by_name(names[i]);
  for (unsigned i = 0; i < n; ++i) by_name2(names[i], AF_INET6);
  for (unsigned i = 0; i < n; ++i) by_name2(names[i], AF_INET);
  by_name2("localhost", AF_UNIX);
  by_name2("a.fern.test", 99);
  by_name2("10.1.1.1", AF_UNSPEC);

  /* Too small a buffer is ERANGE for a name that is found (or that may be numeric: glibc checks
     the size first: one starting with a hex digit or a colon). A name that is not found is
     HOST_NOT_FOUND under the shim whatever the buffer, but ERANGE from glibc below the length of a
     hosts file line, which its files backend reads into the caller's buffer: not compared. */
  for (unsigned i = 0; i < n; ++i) {
    int digit = isxdigit((unsigned char)names[i][0]) || names[i][0] == ':';
    if (by_name_r(names[i], -1, 4096, 0) || digit) by_name_r(names[i], -1, 1, 0);
    if (by_name_r(names[i], AF_INET6, 4096, 3) || digit) by_name_r(names[i], AF_INET6, 1, 0);
  }
  by_name_r("multi.test", AF_INET, 8192, 5);
  by_name_r("localhost", AF_UNIX, 4096, 0);
  by_name_r("a.fern.test", 99, 4096, 0);

  const char* addrs[] = {
      "127.0.0.1", "10.1.1.1",        "10.1.1.2",        "10.1.1.4",  "10.1.1.6",
      "10.2.0.1",  "10.2.9.9",        "192.0.2.77",      "10.9.9.9",  "0.0.0.0",
      "::1",       "fd00::1:5",       "fd00::1:6",       "fd00::2:1", "fd00::9:9",
      "::",        "::ffff:10.2.0.1", "::ffff:10.1.1.1", "::10.2.0.1"};
  for (unsigned i = 0; i < sizeof addrs / sizeof addrs[0]; ++i) {
    int af = strchr(addrs[i], ':') ? AF_INET6 : AF_INET;
    socklen_t alen = af == AF_INET6 ? 16 : 4;
    by_addr(addrs[i], af, alen);
    by_addr_r(addrs[i], af, alen, 4096, 0);
    if (by_addr_r(addrs[i], af, alen, 4096, 1)) by_addr_r(addrs[i], af, alen, 1, 0);
  }
  by_addr("10.1.1.1", AF_INET, 3);
  by_addr("10.1.1.1", AF_INET6, 4);
  by_addr("10.1.1.1", AF_UNIX, 4);
  by_addr("fd00::2:1", AF_INET, 16);
  by_addr_r("10.1.1.1", AF_INET, 3, 4096, 0);
  by_addr_r("10.1.1.1", AF_UNIX, 4, 4096, 0);

  /* Result storage: each non-reentrant function reuses its own. */
  struct hostent* a = gethostbyname("localhost");
  struct hostent* b = gethostbyname("hostfile.test");
  struct hostent* c = gethostbyname2("multi.test", AF_INET);
  unsigned char ip[4] = {10, 2, 0, 1};
  struct hostent* d = gethostbyaddr(ip, 4, AF_INET);
  struct hostent* f = gethostbyname("10.1.1.1");
  printf("gethostbyname reuses its storage: %d\n", a == b && b == f);
  printf("gethostbyname2 and gethostbyaddr have their own: %d %d\n", c != b && c != d, d != b);
  printf("still valid: %s %s\n", c ? c->h_name : "NULL", d ? d->h_name : "NULL");
  return 0;
}
