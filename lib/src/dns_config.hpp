// DNS configuration: the FERN_DNS_* environment (read once per process), DNS server syntax, and
// the system files glibc consults that c-ares does not: /etc/nsswitch.conf (hosts line),
// /etc/host.conf (multi) and resolv.conf's `attempts`. Also the way to reach glibc's own resolver
// functions (the nsswitch fallback): through libc.so.6's handle, never through the shim. Never
// blocks beyond reading small regular files; never throws unless stated.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "dns_internal.hpp"

namespace fern::detail::dns {

// A DNS server: numeric address and UDP/TCP port.
struct server_spec {
  int family = AF_INET;
  ip_bytes addr{};
  int port = 53;
};

// Parses "host" (IPv4 or bare IPv6), "host:port" (IPv4), "[v6]" or "[v6]:port"; ports 1..65535.
// No zones, no names. False if malformed.
bool parse_server(std::string_view text, server_spec* out) noexcept;
// A comma-separated list of the above (empty items are skipped); false if any item is malformed.
bool parse_server_list(std::string_view text, std::vector<server_spec>* out);
// "500ms", "2s", "1.5" (seconds) or "2": a positive time in whole milliseconds (at least 1).
std::optional<int> parse_timeout_ms(std::string_view text) noexcept;

// FERN_DNS_SERVERS, FERN_DNS_TIMEOUT, FERN_DNS_ATTEMPTS, FERN_HOSTS_FILE, FERN_RESOLV_CONF, read
// on first use. A malformed value is reported once on stderr and ignored.
struct env_settings {
  std::vector<server_spec> servers;  // empty: resolv.conf's
  std::optional<int> timeout_ms;
  std::optional<int> attempts;
  std::optional<std::string> hosts_file;
  std::optional<std::string> resolv_conf;
};
const env_settings& env() noexcept;
// Parses the environment as it is now (env() caches the first result). For tests.
env_settings parse_env();

// --- /etc/nsswitch.conf ---------------------------------------------------------------------
enum class source_kind { files, dns };
// One service of the hosts line and its actions: ret[status] says whether a lookup that ended in
// that nss_status returns (true) or continues with the next service (glibc's defaults: return
// on success only).
struct nss_source {
  source_kind kind = source_kind::files;
  bool ret[4] = {true, false, false, false};
};
struct nss_config {
  bool supported = true;  // false: a service other than files/dns, or an action fern lacks
  std::vector<nss_source> sources;
};
// Parses the text of an nsswitch.conf; without a hosts line, glibc's default
// "dns [!UNAVAIL=return] files".
nss_config parse_nsswitch(std::string_view text);
// The process's hosts configuration: /etc/nsswitch.conf, read once (or the test override).
const nss_config& hosts_nss();
// Tests: replaces the process's hosts configuration (nullopt restores the file's). Not
// thread-safe against concurrent lookups.
void override_hosts_nss(std::optional<nss_config> cfg);

// /etc/host.conf (or RESOLV_HOST_CONF) "multi on|off", overridden by RESOLV_MULTI; read once.
bool hosts_multi() noexcept;

// The `attempts` of a resolv.conf ("options attempts:N", then RES_OPTIONS), capped at 5 as
// glibc does; nullopt when neither sets it.
std::optional<int> resolv_conf_attempts(const std::string& path);

// Reads a small regular file whole; false (with errno) if it cannot be opened or read.
bool read_file(const char* path, std::string* out) noexcept;

// Text helpers of the configuration parsers (C locale, independent of the program's).
bool is_space(char c) noexcept;
bool iequals(std::string_view a, std::string_view b) noexcept;  // ASCII case-insensitive
// The first line of `rest` (without its '\n'); `rest` moves past it.
std::string_view next_line(std::string_view& rest) noexcept;

// glibc's own definition of a libc function (not an interposer's): dlsym on libc.so.6's handle,
// else RTLD_NEXT. Null if absent.
void* libc_symbol(const char* name) noexcept;

}  // namespace fern::detail::dns
