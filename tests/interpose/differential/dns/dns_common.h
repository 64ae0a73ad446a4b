/* Shared by the DNS differential programs (tests/interpose/dns_diff.sh runs them in a private
   network and mount namespace: the test hosts file, a resolv.conf that points at a dnsmasq on
   127.0.0.53, addresses of both families on lo). They print every result in full, in order, and
   every error code by name, so a run under the shim must print exactly what glibc prints. */
#ifndef FERN_DNS_COMMON_H
#define FERN_DNS_COMMON_H

#include "../common.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>

static inline const char* eai_name(int r) {
  static char other[32];
  switch (r) {
    case 0:
      return "0";
    case EAI_BADFLAGS:
      return "EAI_BADFLAGS";
    case EAI_NONAME:
      return "EAI_NONAME";
    case EAI_AGAIN:
      return "EAI_AGAIN";
    case EAI_FAIL:
      return "EAI_FAIL";
    case EAI_FAMILY:
      return "EAI_FAMILY";
    case EAI_SOCKTYPE:
      return "EAI_SOCKTYPE";
    case EAI_SERVICE:
      return "EAI_SERVICE";
    case EAI_MEMORY:
      return "EAI_MEMORY";
    case EAI_SYSTEM:
      return "EAI_SYSTEM";
    case EAI_OVERFLOW:
      return "EAI_OVERFLOW";
    case EAI_NODATA:
      return "EAI_NODATA";
    case EAI_ADDRFAMILY:
      return "EAI_ADDRFAMILY";
    case EAI_IDN_ENCODE:
      return "EAI_IDN_ENCODE";
  }
  snprintf(other, sizeof other, "EAI_%d", r);
  return other;
}

static inline const char* herr_name(int h) {
  static char other[32];
  switch (h) {
    case NETDB_INTERNAL:
      return "NETDB_INTERNAL";
    case NETDB_SUCCESS:
      return "NETDB_SUCCESS";
    case HOST_NOT_FOUND:
      return "HOST_NOT_FOUND";
    case TRY_AGAIN:
      return "TRY_AGAIN";
    case NO_RECOVERY:
      return "NO_RECOVERY";
    case NO_DATA:
      return "NO_DATA";
    case 4242:
      return "untouched";
  }
  snprintf(other, sizeof other, "h_errno %d", h);
  return other;
}

static inline const char* errno_text(int e) {
  return e == 0 ? "0" : e == 4242 ? "untouched" : strerrorname_np(e);
}

static inline const char* family_name(int f) {
  static char other[32];
  switch (f) {
    case AF_INET:
      return "inet";
    case AF_INET6:
      return "inet6";
    case AF_UNSPEC:
      return "unspec";
  }
  snprintf(other, sizeof other, "af%d", f);
  return other;
}

/* "inet6 [fe80::1%1]:80" */
static inline void print_sockaddr(const struct sockaddr* sa, socklen_t len) {
  char text[INET6_ADDRSTRLEN] = "?";
  if (sa->sa_family == AF_INET && len >= sizeof(struct sockaddr_in)) {
    const struct sockaddr_in* in = (const struct sockaddr_in*)sa;
    inet_ntop(AF_INET, &in->sin_addr, text, sizeof text);
    printf("%s:%u", text, ntohs(in->sin_port));
  } else if (sa->sa_family == AF_INET6 && len >= sizeof(struct sockaddr_in6)) {
    const struct sockaddr_in6* in6 = (const struct sockaddr_in6*)sa;
    inet_ntop(AF_INET6, &in6->sin6_addr, text, sizeof text);
    printf("[%s%%%u flow %u]:%u", text, in6->sin6_scope_id, ntohl(in6->sin6_flowinfo),
           ntohs(in6->sin6_port));
  } else {
    printf("family %d len %u", sa->sa_family, (unsigned)len);
  }
}

static inline void print_addrinfo(const struct addrinfo* ai) {
  for (; ai; ai = ai->ai_next) {
    printf("  %s %d/%d flags %#x len %u ", family_name(ai->ai_family), ai->ai_socktype,
           ai->ai_protocol, ai->ai_flags, (unsigned)ai->ai_addrlen);
    print_sockaddr(ai->ai_addr, ai->ai_addrlen);
    if (ai->ai_canonname) printf(" canon \"%s\"", ai->ai_canonname);
    printf("\n");
  }
}

static inline void print_hostent(const struct hostent* he) {
  printf("  name \"%s\" type %s len %d\n", he->h_name, family_name(he->h_addrtype), he->h_length);
  for (char** a = he->h_aliases; *a; ++a) printf("  alias \"%s\"\n", *a);
  for (char** a = he->h_addr_list; *a; ++a) {
    char text[INET6_ADDRSTRLEN] = "?";
    inet_ntop(he->h_addrtype, *a, text, sizeof text);
    printf("  addr %s\n", text);
  }
}

#endif
