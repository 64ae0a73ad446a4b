/* getaddrinfo in the controlled environment of dns_diff.sh: numeric hosts, localhost, names
   of the test hosts file (aliases, several addresses, both families), names served by dnsmasq
   (A, AAAA, CNAME, the search list, SERVFAIL, NXDOMAIN), every flag, null node and service,
   and each argument error. Prints each full list in order, or the error code. */
#include "dns_common.h"

static int case_no;

static void gai(const char* node, const char* serv, int family, int socktype, int protocol,
                int flags) {
  struct addrinfo hints, *res = NULL;
  memset(&hints, 0, sizeof hints);
  hints.ai_family = family;
  hints.ai_socktype = socktype;
  hints.ai_protocol = protocol;
  hints.ai_flags = flags;
  errno = 4242;
  int r = getaddrinfo(node, serv, &hints, &res);
  int e = errno;
  printf("%d: node %s%s%s serv %s%s%s family %s type %d proto %d flags %#x -> %s", ++case_no,
         node ? "\"" : "", node ? node : "NULL", node ? "\"" : "", serv ? "\"" : "",
         serv ? serv : "NULL", serv ? "\"" : "", family_name(family), socktype, protocol, flags,
         eai_name(r));
  if (r == EAI_SYSTEM) printf(" errno %s", errno_text(e));
  printf("\n");
  if (r == 0) {
    print_addrinfo(res);
    freeaddrinfo(res);
  }
}

static void gai_null_hints(const char* node, const char* serv) {
  struct addrinfo* res = NULL;
  int r = getaddrinfo(node, serv, NULL, &res);
  printf("%d: node %s serv %s null hints -> %s\n", ++case_no, node ? node : "NULL",
         serv ? serv : "NULL", eai_name(r));
  if (r == 0) {
    print_addrinfo(res);
    freeaddrinfo(res);
  }
}

int main(void) {
  const int S = SOCK_STREAM, D = SOCK_DGRAM, U = AF_UNSPEC, I4 = AF_INET, I6 = AF_INET6;

  /* Numeric hosts, the inet_aton forms and scope ids included. */
  gai("127.0.0.1", "80", U, 0, 0, 0);
  gai("::1", "http", U, 0, 0, 0);
  gai("10.1", "22", I4, S, 0, 0);
  gai("0x7f.1", NULL, U, S, 0, 0);
  gai("fe80::1%lo", "80", I6, S, 0, 0);
  gai("fe80::1%1", "80", U, D, 0, 0);
  gai("1.2.3.4", "80", I6, S, 0, 0);
  gai("1.2.3.4", "80", I6, S, 0, AI_V4MAPPED);
  gai("::1", "80", I4, S, 0, 0);
  gai("::ffff:10.1.1.1", "80", U, S, 0, AI_CANONNAME);
  gai("127.0.0.1", NULL, U, 0, 0, AI_CANONNAME);
  gai("1.2.3.4.", "80", U, S, 0, 0);

  /* localhost and the test hosts file. */
  gai_null_hints("localhost", "80");
  gai_null_hints("hostfile.test", NULL);
  gai("localhost", NULL, U, 0, 0, 0);
  gai("localhost", "80", I4, S, 0, AI_CANONNAME);
  gai("localhost", "80", I6, S, 0, AI_CANONNAME);
  gai("ip6-localhost", "80", U, S, 0, AI_CANONNAME);
  gai("hostfile.test", "80", U, S, 0, AI_CANONNAME);
  gai("hf-alias1", "80", U, S, 0, AI_CANONNAME);
  gai("HF-ALIAS2", "80", U, S, 0, AI_CANONNAME);
  gai("multi.test", "80", U, S, 0, AI_CANONNAME);
  gai("multi.test", "80", I4, 0, 0, 0);
  gai("multi.test", "80", I6, S, 0, 0);
  gai("multi.test", "80", I6, S, 0, AI_V4MAPPED);
  gai("multi.test", "80", I6, S, 0, AI_V4MAPPED | AI_ALL);
  gai("multi6-alias", "80", U, S, 0, AI_CANONNAME);
  gai("v6only.test", "80", U, S, 0, 0);
  gai("v6only.test", "80", I4, S, 0, 0);
  gai("hostfile.test", "80", I6, S, 0, 0);
  gai("hostfile.test", "80", I6, S, 0, AI_V4MAPPED);
  gai("hostfile.test", "80", I6, S, 0, AI_V4MAPPED | AI_ALL | AI_CANONNAME);
  gai("mixed.case.test", "80", U, S, 0, AI_CANONNAME);
  gai("hostfile.test.", "80", U, S, 0, AI_CANONNAME);

  /* Names from dnsmasq. */
  gai("a.fern.test", "80", U, S, 0, AI_CANONNAME);
  gai("a.fern.test", NULL, U, 0, 0, 0);
  gai("aaaa.fern.test", "80", U, S, 0, AI_CANONNAME);
  gai("both.fern.test", "80", U, S, 0, AI_CANONNAME);
  gai("both.fern.test", "80", I4, S, 0, 0);
  gai("both.fern.test", "80", I6, S, 0, 0);
  gai("two4.fern.test", "80", U, S, 0, AI_CANONNAME);
  gai("two4.fern.test", "80", I6, S, 0, AI_V4MAPPED);
  gai("cname.fern.test", "80", U, S, 0, AI_CANONNAME);
  gai("cname.fern.test", "80", I4, D, 0, AI_CANONNAME);
  gai("cname.fern.test", "80", U, S, 0, 0);
  gai("a.fern.test", "80", I6, S, 0, 0);
  gai("a.fern.test", "80", I6, S, 0, AI_V4MAPPED);
  gai("both.fern.test", "80", I6, S, 0, AI_V4MAPPED | AI_ALL);
  gai("aaaa.fern.test", "80", I4, S, 0, 0);
  gai("a", "80", U, S, 0, AI_CANONNAME);
  gai("cname", "80", U, S, 0, AI_CANONNAME);
  gai("A.Fern.Test", "80", U, S, 0, AI_CANONNAME);
  gai("a.fern.test.", "80", U, S, 0, AI_CANONNAME);
  gai("nothere.fern.test", "80", U, S, 0, 0);
  gai("nothere", "80", U, S, 0, 0);
  gai("nothere.fern.test", "80", U, S, 0, AI_CANONNAME);
  gai("servfail.fern.test", "80", U, S, 0, 0);
  gai("", "80", U, S, 0, 0);

  /* AI_PASSIVE, null node and service. */
  gai(NULL, "8080", U, S, 0, AI_PASSIVE);
  gai(NULL, "8080", I6, S, 0, AI_PASSIVE);
  gai(NULL, "8080", U, S, 0, 0);
  gai(NULL, "http", U, 0, 0, 0);
  gai(NULL, NULL, U, 0, 0, AI_PASSIVE);
  gai("localhost", "8080", U, S, 0, AI_PASSIVE);
  gai("a.fern.test", NULL, I4, S, 0, AI_PASSIVE);
  gai("localhost", NULL, U, S, 0, 0);
  gai("localhost", "", U, S, 0, 0);

  /* AI_NUMERICHOST, AI_NUMERICSERV, AI_CANONNAME. */
  gai("a.fern.test", "80", U, S, 0, AI_NUMERICHOST);
  gai("localhost", "80", U, S, 0, AI_NUMERICHOST);
  gai("10.1.1.1", "80", U, S, 0, AI_NUMERICHOST | AI_CANONNAME);
  gai("a.fern.test", "http", U, S, 0, AI_NUMERICSERV);
  gai("a.fern.test", "8080", U, S, 0, AI_NUMERICSERV);
  gai("hostfile.test", "80x", U, S, 0, AI_NUMERICSERV);
  gai(NULL, "80", U, S, 0, AI_CANONNAME);
  gai(NULL, "80", U, S, 0, AI_CANONNAME | AI_PASSIVE);

  /* AI_ADDRCONFIG (both families are configured on lo here). */
  gai("localhost", "80", U, S, 0, AI_ADDRCONFIG);
  gai("both.fern.test", "80", U, S, 0, AI_ADDRCONFIG);
  gai("multi.test", "80", I6, S, 0, AI_ADDRCONFIG | AI_V4MAPPED);
  gai("::1", "80", U, S, 0, AI_ADDRCONFIG);

  /* Argument errors: flags, services, families, socket types, protocols. */
  gai("localhost", "80", U, S, 0, 0x10000);
  gai("a.fern.test", "80", U, S, 0, 0x10000);
  gai("localhost", "nosuchservice", U, S, 0, 0);
  gai("a.fern.test", "nosuchservice", U, S, 0, 0);
  gai("nothere.fern.test", "nosuchservice", U, S, 0, 0);
  gai("a.fern.test", "http", U, D, 0, 0);
  gai("a.fern.test", "domain", U, 0, 0, 0);
  gai("a.fern.test", "syslog", U, 0, 0, 0);
  gai("a.fern.test", "80", U, SOCK_RAW, 0, 0);
  gai("a.fern.test", NULL, U, SOCK_RAW, 0, 0);
  gai("a.fern.test", "80", U, SOCK_SEQPACKET, 0, 0);
  gai("a.fern.test", "80", U, 99, 0, 0);
  gai("a.fern.test", "80", 99, S, 0, 0);
  gai("a.fern.test", "80", AF_UNIX, S, 0, 0);
  gai("a.fern.test", "80", U, S, IPPROTO_UDP, 0);
  gai("a.fern.test", "80", U, 0, IPPROTO_UDP, 0);
  gai("a.fern.test", "80", U, 0, IPPROTO_TCP, 0);
  gai("a.fern.test", "80", U, 0, IPPROTO_SCTP, 0);
  gai("a.fern.test", "80", U, 0, 200, 0);
  gai("a.fern.test", "99999", U, S, 0, 0);
  gai("a.fern.test", "-1", U, S, 0, 0);

  for (int code = -105; code <= 0; ++code) {
    const char* s = gai_strerror(code);
    if (strcmp(s, "Unknown error") != 0) printf("gai_strerror(%d): %s\n", code, s);
  }
  errno = 4242;
  struct addrinfo* res = NULL;
  int r = getaddrinfo("hostfile.test", "80", NULL, &res);
  printf("errno after a success: %s (%s)\n", errno_text(errno), eai_name(r));
  if (r == 0) freeaddrinfo(res);
  return 0;
}
