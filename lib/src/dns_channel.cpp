// The per-hub c-ares channel, its driver fiber, and glibc's search-list walk on top of it
// (dns_channel.hpp). c-ares calls back into this file from ares_process_fd (on the driver
// fiber), from ares_query itself (a query that fails at once), from ares_cancel and from
// ares_destroy; the callbacks never park and never throw.
//
// A lookup_op (one round of queries: A, AAAA, both, or PTR) goes through:
//   state           | event                                  | next
//   ----------------+----------------------------------------+------------------------------
//   waiting         | last callback (remaining -> 0)         | done: callback unparks the fiber
//   waiting         | fiber woken by kill/timeout/scope      | abandoned (fiber returns at once)
//   abandoned       | last callback                          | deleted by that callback
//   done            | fiber reads the replies                | deleted by the fiber
// Abandoned ops never touch their fiber again; ~channel marks every op abandoned before
// ares_destroy runs the remaining callbacks.
#include "dns_channel.hpp"

#include <ares.h>
#include <arpa/nameser.h>
#include <errno.h>
#include <netinet/in.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <deque>
#include <mutex>
#include <new>
#include <optional>
#include <string_view>

#include "fern/fiber.hpp"
#include "fern/fiber_local.hpp"
#include "fern/io.hpp"
#include "hub_impl.hpp"
#include "sys.hpp"
#include "sys_net.hpp"

namespace fern::detail::dns {

namespace {

int library_status() noexcept {
  static std::once_flag once;
  static int status = ARES_SUCCESS;
  std::call_once(once, [] { status = ares_library_init(ARES_LIB_INIT_ALL); });
  return status;
}

}  // namespace

struct lookup_op;

// One c-ares query of a lookup. Lives inside its lookup_op.
struct query_slot {
  lookup_op* op = nullptr;
  int type = 0;  // ns_t_a, ns_t_aaaa or ns_t_ptr
  int attempts_left = 1;
  std::string qname;
  dns_reply reply;
};

// Links a lookup_op on its channel's list (standard layout, so the hook maps back).
struct op_link {
  list_hook hook;
  lookup_op* op = nullptr;
};

struct lookup_op {
  op_link link;           // on channel::ops_ until deleted
  channel* ch = nullptr;  // valid while linked (a channel outlives its linked ops)
  waiter* w = nullptr;    // the parked fiber's waiter, while it waits
  int remaining = 0;      // slots whose final callback has not run
  bool abandoned = false;
  int nslots = 0;
  query_slot slots[2];
  unsigned char ptr_addr[16] = {};  // PTR: the address asked about
  int ptr_family = AF_INET;
};

class channel : public std::enable_shared_from_this<channel> {
 public:
  channel() = default;
  channel(const channel&) = delete;
  channel& operator=(const channel&) = delete;
  ~channel();

  static std::shared_ptr<channel> make(const channel_config& cfg, int* status);

  int attempts() const noexcept { return attempts_; }
  int ndots() const noexcept { return ndots_; }
  const std::vector<std::string>& domains() const noexcept { return domains_; }
  void track(lookup_op* op) noexcept {
    op->link.op = op;
    ops_.push_back(&op->link.hook);
  }
  // Sends s's query. Its callback may run before this returns.
  void submit(query_slot* s) noexcept;
  // Makes sure a driver runs (and sees the newest sockets and deadline). Never blocks.
  void start_driver() noexcept;

 private:
  struct sock_entry {
    int fd;
    bool read;
    bool write;
    bool more;  // the last recv on it returned data: there may be more (TCP reads once)
  };
  // Moves the driver's reference in and out of its fiber's callable; its destructor (the
  // callable dropped, whether the driver ran or was killed before it started) ends the driver.
  struct driver_ref {
    std::shared_ptr<channel> ch;
    explicit driver_ref(std::shared_ptr<channel> c) noexcept : ch(std::move(c)) {}
    driver_ref(driver_ref&& o) noexcept : ch(std::move(o.ch)) {}
    driver_ref(const driver_ref&) = delete;
    driver_ref& operator=(const driver_ref&) = delete;
    ~driver_ref() {
      if (ch) ch->driver_exited();
    }
  };

  static void on_reply(void* arg, int status, int timeouts, unsigned char* abuf, int alen);
  static void parse_reply(query_slot* s, int status, const unsigned char* abuf, int alen);
  static void sock_state(void* data, ares_socket_t fd, int readable, int writable);
  static ares_socket_t sock_open(int family, int type, int protocol, void* data);
  static int sock_close(ares_socket_t fd, void* data);
  static int sock_connect(ares_socket_t fd, const struct sockaddr* sa, ares_socklen_t len,
                          void* data);
  static ares_ssize_t sock_recvfrom(ares_socket_t fd, void* buf, size_t len, int flags,
                                    struct sockaddr* from, ares_socklen_t* from_len, void* data);
  static ares_ssize_t sock_sendv(ares_socket_t fd, const struct iovec* iov, int n, void* data);
  static const ares_socket_functions socket_functions;

  sock_entry* find_sock(int fd) noexcept;
  void drive() noexcept;
  void process() noexcept;
  void kick() noexcept;
  void driver_exited() noexcept;
  // Submits backlogged queries while there is room. Never blocks.
  void pump() noexcept;
  // Ends every backlogged query with `status` (their callbacks run).
  void fail_backlog(int status) noexcept;

  ares_channel ch_ = nullptr;
  int attempts_ = 2;
  int ndots_ = 1;                     // resolv.conf / RES_OPTIONS, as c-ares read them
  std::vector<std::string> domains_;  // the search list (search / domain / LOCALDOMAIN)
  std::vector<sock_entry> socks_;     // c-ares's sockets and the directions it wants
  std::vector<int> scratch_fds_;      // process()'s snapshot of socks_, kept to reuse its memory
  std::size_t pending_ = 0;           // queries submitted whose callback has not run
  // Queries beyond k_max_in_flight wait here, in order, for a reply to make room, so that no
  // burst sends more datagrams at once than socket buffers hold (each lost one costs a whole
  // retry timeout). 1000 keeps a thousand concurrent lookups in one round trip.
  static constexpr std::size_t k_max_in_flight = 1000;
  std::deque<query_slot*> backlog_;
  bool pumping_ = false;
  bool driver_running_ = false;   // a driver fiber exists (spawned, not yet exited)
  bool driver_waiting_ = false;   // the driver is parked in wait_fds
  fiber_base* driver_ = nullptr;  // the driver fiber, while it runs
  bool destroying_ = false;
  hook_list ops_;  // op_links of the lookups not yet deleted
};

const ares_socket_functions channel::socket_functions = {
    &channel::sock_open, &channel::sock_close, &channel::sock_connect, &channel::sock_recvfrom,
    &channel::sock_sendv};

std::shared_ptr<channel> channel::make(const channel_config& cfg, int* status) {
  *status = library_status();
  if (*status != ARES_SUCCESS) return nullptr;
  auto ch = std::make_shared<channel>();
  ares_options o;
  std::memset(&o, 0, sizeof o);
  int mask = ARES_OPT_SOCK_STATE_CB | ARES_OPT_TRIES;
  o.sock_state_cb = &channel::sock_state;
  o.sock_state_cb_data = ch.get();
  o.tries = 1;  // one try per server per attempt; dns_search repeats timed-out attempts
  if (cfg.timeout_ms) {
    o.timeout = *cfg.timeout_ms;
    mask |= ARES_OPT_TIMEOUTMS;
  }
  std::string resolv_conf = cfg.resolv_conf;
  if (!resolv_conf.empty()) {
    o.resolvconf_path = resolv_conf.data();
    mask |= ARES_OPT_RESOLVCONF;
  }
  *status = ares_init_options(&ch->ch_, &o, mask);
  if (*status != ARES_SUCCESS) {
    ch->ch_ = nullptr;
    return nullptr;
  }
  ares_set_socket_functions(ch->ch_, &socket_functions, ch.get());
  if (!cfg.servers.empty()) {
    std::vector<ares_addr_port_node> nodes(cfg.servers.size());
    for (std::size_t i = 0; i < nodes.size(); ++i) {
      const server_spec& s = cfg.servers[i];
      nodes[i].next = i + 1 < nodes.size() ? &nodes[i + 1] : nullptr;
      nodes[i].family = s.family;
      std::memcpy(&nodes[i].addr, s.addr.data(), addr_len(s.family));
      nodes[i].udp_port = s.port;
      nodes[i].tcp_port = s.port;
    }
    *status = ares_set_servers_ports(ch->ch_, nodes.data());
    if (*status != ARES_SUCCESS) return nullptr;
  }
  ch->attempts_ = cfg.attempts;
  ares_options saved;
  int saved_mask = 0;
  if (ares_save_options(ch->ch_, &saved, &saved_mask) == ARES_SUCCESS) {
    if (saved_mask & ARES_OPT_NDOTS) ch->ndots_ = saved.ndots;
    if (saved_mask & ARES_OPT_DOMAINS)
      for (int i = 0; i < saved.ndomains; ++i) ch->domains_.emplace_back(saved.domains[i]);
    ares_destroy_options(&saved);
  }
  return ch;
}

channel::~channel() {
  destroying_ = true;
  // Nobody can wait on an op any more (a waiting lookup holds a reference): make sure the
  // callbacks ares_destroy runs free them without looking for a fiber.
  for (list_hook* h = ops_.front(); h; h = ops_.next(h)) {
    lookup_op* op = reinterpret_cast<op_link*>(h)->op;
    op->abandoned = true;
    op->w = nullptr;
  }
  if (ch_) ares_destroy(ch_);
  // Ops whose callbacks all ran but that nobody collected (impossible while lookups hold
  // references; kept for safety).
  while (list_hook* h = ops_.pop_front()) delete reinterpret_cast<op_link*>(h)->op;
}

void channel::submit(query_slot* s) noexcept {
  if (pending_ >= k_max_in_flight || !backlog_.empty()) {
    try {
      backlog_.push_back(s);
      return;
    } catch (...) {  // out of memory: send it now rather than lose it
    }
  }
  ++pending_;
  ares_query(ch_, s->qname.c_str(), ns_c_in, s->type, &channel::on_reply, s);
}

void channel::pump() noexcept {
  // A query may fail inside ares_query and its callback pump again: the outer loop goes on.
  if (pumping_ || destroying_) return;
  pumping_ = true;
  while (pending_ < k_max_in_flight && !backlog_.empty()) {
    query_slot* s = backlog_.front();
    backlog_.pop_front();
    ++pending_;
    ares_query(ch_, s->qname.c_str(), ns_c_in, s->type, &channel::on_reply, s);
  }
  pumping_ = false;
}

void channel::fail_backlog(int status) noexcept {
  std::deque<query_slot*> q;
  q.swap(backlog_);
  for (query_slot* s : q) {
    ++pending_;  // on_reply accounts for it
    s->attempts_left = 0;
    on_reply(s, status, 0, nullptr, 0);
  }
}

void channel::parse_reply(query_slot* s, int status, const unsigned char* abuf, int alen) {
  dns_reply& r = s->reply;
  r = dns_reply{};
  r.raw = status;
  r.status = status;
  if (status != ARES_SUCCESS) return;
  hostent* h = nullptr;
  if (s->type == ns_t_a)
    r.status = ares_parse_a_reply(abuf, alen, &h, nullptr, nullptr);
  else if (s->type == ns_t_aaaa)
    r.status = ares_parse_aaaa_reply(abuf, alen, &h, nullptr, nullptr);
  else
    r.status =
        ares_parse_ptr_reply(abuf, alen, s->op->ptr_addr,
                             static_cast<int>(addr_len(s->op->ptr_family)), s->op->ptr_family, &h);
  if (r.status == ARES_SUCCESS && h) {
    if (h->h_name) r.name = h->h_name;
    for (char** a = h->h_aliases; a && *a; ++a) r.aliases.emplace_back(*a);
    if (s->type != ns_t_ptr) {
      std::size_t len = static_cast<std::size_t>(h->h_length);
      for (char** p = h->h_addr_list; p && *p; ++p) {
        ip_bytes b{};
        std::memcpy(b.data(), *p, len > 16 ? 16 : len);
        r.addrs.push_back(b);
      }
      if (r.addrs.empty()) r.status = ARES_ENODATA;
    }
  }
  if (h) ares_free_hostent(h);
}

void channel::on_reply(void* arg, int status, int, unsigned char* abuf, int alen) {
  auto* s = static_cast<query_slot*>(arg);
  lookup_op* op = s->op;
  channel* ch = op->ch;
  --ch->pending_;
  ch->pump();
  if (status == ARES_ETIMEOUT && !op->abandoned && !ch->destroying_ && s->attempts_left > 1) {
    --s->attempts_left;
    ch->submit(s);  // the next attempt; this callback is not the final one
    return;
  }
  if (!op->abandoned) {
    try {
      parse_reply(s, status, abuf, alen);
    } catch (...) {  // std::bad_alloc copying names
      s->reply = dns_reply{};
      s->reply.raw = s->reply.status = ARES_ENOMEM;
    }
  }
  if (--op->remaining > 0) return;
  if (op->abandoned) {
    op->link.hook.unlink();
    delete op;
  } else if (op->w) {
    unpark(*op->w);
  }
}

channel::sock_entry* channel::find_sock(int fd) noexcept {
  for (sock_entry& e : socks_)
    if (e.fd == fd) return &e;
  return nullptr;
}

void channel::sock_state(void* data, ares_socket_t fd, int readable, int writable) {
  auto* ch = static_cast<channel*>(data);
  sock_entry* e = ch->find_sock(fd);
  if (!readable && !writable) {
    if (e) {
      *e = ch->socks_.back();
      ch->socks_.pop_back();
    }
    return;
  }
  if (!e) {
    try {
      ch->socks_.push_back({fd, false, false, false});
    } catch (...) {  // cannot watch it: its queries end by timeout
      return;
    }
    e = &ch->socks_.back();
  }
  e->read = readable != 0;
  e->write = writable != 0;
}

ares_socket_t channel::sock_open(int family, int type, int protocol, void*) {
  int fd = sys::socket(family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, protocol);
  if (fd < 0) return ARES_SOCKET_BAD;
  if (type == SOCK_DGRAM) {
    // One UDP socket per server carries every lookup of the hub: a thousand answers can arrive
    // at once. Default buffers drop most of them (gVisor queues 256 datagrams); ask for more
    // (the kernel caps it at net.core.rmem_max).
    int size = 1 << 20;
    sys::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
  }
  return fd;
}

int channel::sock_close(ares_socket_t fd, void* data) {
  auto* ch = static_cast<channel*>(data);
  if (sock_entry* e = ch->find_sock(fd)) {
    *e = ch->socks_.back();
    ch->socks_.pop_back();
  }
  fd_closing(fd);
  return sys::close(fd);
}

int channel::sock_connect(ares_socket_t fd, const struct sockaddr* sa, ares_socklen_t len, void*) {
  return sys::connect(fd, sa, len);
}

ares_ssize_t channel::sock_recvfrom(ares_socket_t fd, void* buf, size_t len, int flags,
                                    struct sockaddr* from, ares_socklen_t* from_len, void* data) {
  auto* ch = static_cast<channel*>(data);
  ssize_t n = sys::recvfrom(fd, buf, len, flags, from, from_len);
  if (sock_entry* e = ch->find_sock(fd)) e->more = n > 0;
  return n;
}

ares_ssize_t channel::sock_sendv(ares_socket_t fd, const struct iovec* iov, int n, void*) {
  msghdr m{};
  m.msg_iov = const_cast<struct iovec*>(iov);
  m.msg_iovlen = static_cast<std::size_t>(n);
  ssize_t r = sys::sendmsg(fd, &m, MSG_NOSIGNAL);  // a closed TCP peer: EPIPE, not SIGPIPE
  if (r < 0 && errno == ECONNREFUSED) {
    // On a connected UDP socket this reports the ICMP error an *earlier* datagram caused, and
    // clears it: c-ares would fail only this query and leave the others on the socket waiting
    // for their timeout. Send again; this datagram's own error then reaches recvfrom, where
    // c-ares fails every query of the server at once (as glibc, which sees it on recvfrom).
    int type = 0;
    socklen_t len = sizeof type;
    if (sys::getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) == 0 && type == SOCK_DGRAM)
      r = sys::sendmsg(fd, &m, MSG_NOSIGNAL);
  }
  return r;
}

void channel::start_driver() noexcept {
  if (pending_ == 0) return;
  if (driver_running_) {
    kick();
    return;
  }
  driver_running_ = true;
  try {
    fern::spawn(spawn_options{.name = "fern-dns"},
                [ref = driver_ref(shared_from_this())]() mutable { ref.ch->drive(); });
  } catch (...) {
    // No fiber to drive the queries (out of memory): fail them rather than wait forever.
    driver_running_ = false;
    fail_backlog(ARES_ECANCELLED);
    ares_cancel(ch_);
  }
}

void channel::kick() noexcept {
  // The driver waits on the fds and deadline it saw last; wake it to look again.
  if (driver_waiting_ && driver_ && driver_->state_ == fiber_state::parked && driver_->parked_on_)
    unpark(*driver_->parked_on_, wake_reason::notified);
}

void channel::driver_exited() noexcept {
  driver_running_ = false;
  driver_waiting_ = false;
  driver_ = nullptr;
  // Killed with queries in flight (thread exit) or never started: nothing would ever process
  // them, so end them now (their lookups see ARES_ECANCELLED).
  if (!destroying_) fail_backlog(ARES_ECANCELLED);
  if (pending_ > 0 && !destroying_) ares_cancel(ch_);
}

void channel::drive() noexcept {
  driver_ = current_fiber();
  std::vector<fd_interest> interest;
  while (pending_ > 0) {
    interest.clear();
    try {
      for (const sock_entry& e : socks_) {
        if (e.read) interest.push_back({e.fd, io_dir::read});
        if (e.write) interest.push_back({e.fd, io_dir::write});
      }
    } catch (...) {
      interest.clear();  // out of memory: poll on timeouts only
    }
    timeval tv;
    timeval* next = ares_timeout(ch_, nullptr, &tv);
    deadline_t deadline =
        next ? now_ns() + static_cast<deadline_t>(tv.tv_sec) * 1000000000 + tv.tv_usec * 1000
             : now_ns() + 1000000000;  // a safety net: c-ares always has a deadline here
    bool scope_expired = false;
    driver_waiting_ = true;
    int r = wait_fds(interest.data(), interest.size(), deadline, &scope_expired);
    driver_waiting_ = false;
    if (r == ECANCELED) break;  // killed (the hub is going away)
    if (r != 0 && r != ETIMEDOUT && r != EINTR) {
      // wait_fds could not register an fd (ENOMEM...): fall back to a short sleep so the loop
      // still makes progress on timeouts without spinning.
      r = wait_fds(nullptr, 0, std::min(deadline, now_ns() + 10000000), &scope_expired);
      if (r == ECANCELED) break;
    }
    process();
  }
  driver_ = nullptr;
}

void channel::process() noexcept {
  // A snapshot: callbacks may open and close sockets while we go.
  scratch_fds_.clear();
  try {
    for (const sock_entry& e : socks_) scratch_fds_.push_back(e.fd);
  } catch (...) {  // out of memory: the next round (deadline at most 1 s away) retries
  }
  for (int fd : scratch_fds_) {
    // UDP: c-ares reads until EAGAIN. TCP: it reads once per call, and with edge-triggered
    // readiness no new edge comes for what is left, so call again while reads return data.
    for (int round = 0; round < 1024; ++round) {
      sock_entry* e = find_sock(fd);
      if (!e) break;
      e->more = false;
      ares_socket_t rfd = e->read ? fd : ARES_SOCKET_BAD;
      ares_socket_t wfd = e->write ? fd : ARES_SOCKET_BAD;
      ares_process_fd(ch_, rfd, wfd);
      e = find_sock(fd);
      if (!e || !e->more) break;
    }
  }
  ares_process_fd(ch_, ARES_SOCKET_BAD, ARES_SOCKET_BAD);  // timeouts
}

// --- lookups ----------------------------------------------------------------------------------

namespace {

// Parks until every query of op was answered, or the wait ends early (then op is abandoned,
// or freed here if its queries finished at that same moment, and cs.interrupted says why).
// Returns true if op completed (the caller then reads and frees it).
bool wait_op(call_state& cs, channel& ch, lookup_op* op) {
  ch.start_driver();
  waiter w;
  while (op->remaining > 0) {
    op->w = &w;
    bool scope_expired = false;
    wake_reason why = block_nothrow(w, cs.deadline, &scope_expired);
    op->w = nullptr;
    if (why == wake_reason::notified || why == wake_reason::interrupted) continue;
    if (why == wake_reason::killed) {
      cs.interrupted = ECANCELED;
    } else if (why == wake_reason::timed_out) {
      cs.interrupted = ETIMEDOUT;
      cs.scope_expired = scope_expired;
    } else {  // loop_exit: nothing can answer (cannot happen while a driver exists)
      for (int i = 0; i < op->nslots; ++i)
        op->slots[i].reply.raw = op->slots[i].reply.status = ARES_ECANCELLED;
      if (op->remaining > 0) {
        op->abandoned = true;
        return false;
      }
      return true;
    }
    if (op->remaining > 0) {
      op->abandoned = true;
    } else {
      op->link.hook.unlink();
      delete op;
    }
    return false;
  }
  return true;
}

void set_failed(dns_reply* r, int status) {
  *r = dns_reply{};
  r->raw = r->status = status;
}

// One round: asks qname for each of types[0..n) at once and waits for every answer. outs[i]
// receives type i's reply (an error status if the round could not run). A PTR round passes the
// address asked about, for ares_parse_ptr_reply.
void run_round(call_state& cs, const std::string& qname, const int* types, int n, dns_reply* outs,
               const unsigned char* ptr_addr = nullptr, int ptr_family = AF_INET) {
  int status = ARES_SUCCESS;
  std::shared_ptr<channel> ch;
  lookup_op* op = nullptr;
  try {
    ch = resolver::current().get_channel(&status);
    if (ch) {
      op = new lookup_op;
      if (ptr_addr) {
        op->ptr_family = ptr_family;
        std::memcpy(op->ptr_addr, ptr_addr, addr_len(ptr_family));
      }
      for (int i = 0; i < n; ++i) {
        query_slot& s = op->slots[op->nslots++];
        s.type = types[i];
        s.qname = qname;
      }
    }
  } catch (...) {
    delete op;
    op = nullptr;
    status = ARES_ENOMEM;
  }
  if (!op) {
    for (int i = 0; i < n; ++i) set_failed(&outs[i], status);
    return;
  }
  op->ch = ch.get();
  ch->track(op);
  op->remaining = op->nslots;
  for (int i = 0; i < op->nslots; ++i) {
    op->slots[i].op = op;
    op->slots[i].attempts_left = ch->attempts();
  }
  for (int i = 0; i < op->nslots; ++i) ch->submit(&op->slots[i]);
  if (!wait_op(cs, *ch, op)) {
    for (int i = 0; i < n; ++i) set_failed(&outs[i], ARES_ECANCELLED);
    return;
  }
  for (int i = 0; i < n; ++i) outs[i] = std::move(op->slots[i].reply);
  op->link.hook.unlink();
  delete op;
}

// The reply's response code as glibc sees it, or -1 when no response came (transport failure).
int rcode_of(const dns_reply& r) {
  switch (r.raw) {
    case ARES_SUCCESS:
    case ARES_ENODATA:
      return ns_r_noerror;
    case ARES_ENOTFOUND:
      return ns_r_nxdomain;
    case ARES_EFORMERR:
      return ns_r_formerr;
    case ARES_ESERVFAIL:
      return ns_r_servfail;
    case ARES_ENOTIMP:
      return ns_r_notimpl;
    case ARES_EREFUSED:
      return ns_r_refused;
    case ARES_EBADRESP:
      return 0xff;  // an answer glibc would find malformed: "default" below
    default:
      return -1;
  }
}

struct round_verdict {
  int ret;
  int herrno;
  int err;  // 0: errno untouched
};

// __res_context_query's verdict on one round of one or two replies (A first): an answer section
// with records in either is success; otherwise the first reply's response code decides, unless
// it is NOERROR, when the second's does (glibc's "hp / hp2" rules, partial answers included).
round_verdict judge(const dns_reply* r, int n) {
  for (int i = 0; i < n; ++i) {
    if (r[i].raw == ARES_ENOMEM) return {-1, NETDB_INTERNAL, ENOMEM};
    if (r[i].raw == ARES_EBADNAME || r[i].raw == ARES_EBADQUERY || r[i].raw == ARES_EBADFAMILY)
      return {-1, NO_RECOVERY, 0};  // res_nmkquery failed: nothing was sent
  }
  const dns_reply* hp = nullptr;
  const dns_reply* hp2 = nullptr;
  for (int i = 0; i < n; ++i)
    if (rcode_of(r[i]) >= 0) {
      if (!hp)
        hp = &r[i];
      else
        hp2 = &r[i];
    }
  if (!hp) {
    // res_send failed on every server: ETIMEDOUT if any timed out, else ECONNREFUSED (every
    // server unreachable or answering SERVFAIL / REFUSED / NOTIMP, which c-ares reports so).
    bool timed_out = false;
    for (int i = 0; i < n; ++i) timed_out |= r[i].raw != ARES_ECONNREFUSED;
    return {-1, TRY_AGAIN, timed_out ? ETIMEDOUT : ECONNREFUSED};
  }
  if (!hp2) hp2 = hp;
  int rc1 = rcode_of(*hp), rc2 = rcode_of(*hp2);
  bool an1 = hp->raw == ARES_SUCCESS, an2 = hp2->raw == ARES_SUCCESS;
  if ((rc1 != ns_r_noerror || !an1) && (rc2 != ns_r_noerror || !an2)) {
    switch (rc1 == ns_r_noerror ? rc2 : rc1) {
      case ns_r_nxdomain:
        return {-1, HOST_NOT_FOUND, 0};
      case ns_r_servfail:
        return {-1, TRY_AGAIN, 0};
      case ns_r_noerror:
        return {-1, NO_DATA, 0};
      default:
        return {-1, NO_RECOVERY, 0};
    }
  }
  return {1, NETDB_SUCCESS, 0};
}

// glibc's res_hostalias: the HOSTALIASES file maps a single-label name to another.
std::optional<std::string> host_alias(const char* name) {
  const char* file = std::getenv("HOSTALIASES");
  if (!file) return std::nullopt;
  std::string text;
  if (!read_file(file, &text)) return std::nullopt;
  auto same_name = [](std::string_view a, std::string_view b) {
    if (!a.empty() && a.back() == '.') a.remove_suffix(1);
    if (!b.empty() && b.back() == '.') b.remove_suffix(1);
    return iequals(a, b);
  };
  std::string_view rest(text);
  while (!rest.empty()) {
    std::string_view line = next_line(rest);
    std::size_t i = 0;
    while (i < line.size() && !is_space(line[i])) ++i;
    if (i >= line.size()) break;  // a line without a second field ends the file for glibc
    if (!same_name(line.substr(0, i), name)) continue;
    while (i < line.size() && is_space(line[i])) ++i;
    if (i >= line.size()) break;
    std::size_t j = i;
    while (j < line.size() && !is_space(line[j])) ++j;
    return std::string(line.substr(i, j - i));
  }
  return std::nullopt;
}

}  // namespace

void dns_search(call_state& cs, const char* name, bool want_a, bool want_aaaa, search_result* out) {
  *out = search_result{};
  int types[2];
  int n = 0;
  if (want_a) types[n++] = ns_t_a;
  if (want_aaaa) types[n++] = ns_t_aaaa;
  dns_reply replies[2];
  int err = 0;  // glibc's errno after the last round
  int herrno = HOST_NOT_FOUND;
  // One __res_context_querydomain; true when it answered (out filled).
  auto query = [&](const std::string& qname) {
    run_round(cs, qname, types, n, replies);
    if (cs.interrupted) return false;
    round_verdict v = judge(replies, n);
    err = v.err;  // res_send leaves errno 0 once any server answered
    herrno = v.herrno;
    if (v.ret > 0) {
      out->ret = 1;
      out->qname = qname;
      for (int i = 0; i < n; ++i) (types[i] == ns_t_a ? out->a : out->aaaa) = std::move(replies[i]);
      return true;
    }
    return false;
  };
  auto finish = [&](int h) {
    out->herrno = h;
    out->err = err;
  };
  int status = ARES_SUCCESS;
  std::shared_ptr<channel> ch;
  try {
    ch = resolver::current().get_channel(&status);
  } catch (...) {
    status = ARES_ENOMEM;
  }
  if (!ch) {
    out->herrno = NETDB_INTERNAL;
    out->err = status == ARES_ENOMEM ? ENOMEM : EIO;
    return;
  }
  std::string_view nv(name);
  std::size_t dots = 0;
  for (char c : nv) dots += c == '.';
  bool trailing_dot = !nv.empty() && nv.back() == '.';
  if (dots == 0) {
    if (auto alias = host_alias(name)) {
      if (!query(*alias) && !cs.interrupted) finish(herrno);
      return;
    }
  }
  int saved_herrno = -1;
  bool tried_as_is = false, searched = false, root_on_list = false;
  bool got_nodata = false;
  if (dots >= static_cast<std::size_t>(ch->ndots()) || trailing_dot) {
    if (query(name) || cs.interrupted) return;
    if (trailing_dot) return finish(herrno);
    saved_herrno = herrno;
    tried_as_is = true;
  }
  // RES_DEFNAMES and RES_DNSRCH are on (glibc's defaults; resolv.conf cannot turn them off).
  if (dots == 0 || !trailing_dot) {
    for (const std::string& domain : ch->domains()) {
      std::string_view d(domain);
      searched = true;
      if (!d.empty() && d.front() == '.') d.remove_prefix(1);
      if (d.empty()) root_on_list = true;
      std::string qname(name);
      qname += '.';
      qname += d;
      if (query(qname) || cs.interrupted) return;
      if (err == ECONNREFUSED) return finish(TRY_AGAIN);  // no server present: give up
      bool done = false;
      switch (herrno) {
        case NO_DATA:
          got_nodata = true;
          break;
        case HOST_NOT_FOUND:
          break;
        default:  // TRY_AGAIN (a SERVFAIL reply is never kept) and the rest: stop searching
          done = true;
      }
      if (done) break;
    }
  }
  (void)searched;  // RES_NOTLDQUERY is never set: the name is tried as is unless done above
  if (!(tried_as_is || root_on_list)) {
    if (query(name) || cs.interrupted) return;
  }
  if (saved_herrno != -1)
    finish(saved_herrno);
  else if (got_nodata)
    finish(NO_DATA);
  else
    finish(herrno);
}

void dns_ptr(call_state& cs, const unsigned char* addr, int family, search_result* out) {
  *out = search_result{};
  std::string q;
  try {
    // glibc's reverse names: "d.c.b.a.in-addr.arpa", nibbles of "ip6.arpa".
    if (family == AF_INET) {
      for (int i = 3; i >= 0; --i) {
        q += std::to_string(addr[i]);
        q += '.';
      }
      q += "in-addr.arpa";
    } else {
      static const char hex[] = "0123456789abcdef";
      for (int i = 15; i >= 0; --i) {
        q += hex[addr[i] & 0xf];
        q += '.';
        q += hex[(addr[i] >> 4) & 0xf];
        q += '.';
      }
      q += "ip6.arpa";
    }
  } catch (...) {
    out->herrno = NETDB_INTERNAL;
    out->err = ENOMEM;
    return;
  }
  int type = ns_t_ptr;
  dns_reply reply;
  run_round(cs, q, &type, 1, &reply, addr, family);
  if (cs.interrupted) return;
  round_verdict v = judge(&reply, 1);
  out->err = v.err;
  out->herrno = v.herrno;
  if (v.ret > 0) {
    out->ret = 1;
    out->qname = std::move(q);
    out->a = std::move(reply);
  }
}

// --- the per-hub resolver ---------------------------------------------------------------------

resolver& resolver::current() {
  static const std::uint64_t key = new_local_key();
  fiber_base* root = hub_impl::current()->root();
  if (void* p = find_local(root, key)) return *static_cast<resolver*>(p);
  auto* r = new resolver();
  add_local(root, key, r, [](void* p) { delete static_cast<resolver*>(p); });
  return *r;
}

resolver::~resolver() = default;

channel_config resolver::make_config() const {
  const env_settings& e = env();
  channel_config c;
  if (!opts_.servers.empty()) {
    for (const std::string& s : opts_.servers) {
      server_spec spec;
      if (parse_server(s, &spec)) c.servers.push_back(spec);  // validated by set_dns_options
    }
  } else {
    c.servers = e.servers;
  }
  if (opts_.timeout) {
    long long ms = (opts_.timeout->count() + 999999) / 1000000;
    c.timeout_ms = static_cast<int>(std::clamp<long long>(ms, 1, 2147483647));
  } else {
    c.timeout_ms = e.timeout_ms;
  }
  if (opts_.resolv_conf)
    c.resolv_conf = *opts_.resolv_conf;
  else if (e.resolv_conf)
    c.resolv_conf = *e.resolv_conf;
  if (opts_.attempts)
    c.attempts = *opts_.attempts;
  else if (e.attempts)
    c.attempts = *e.attempts;
  else
    c.attempts = resolv_conf_attempts(c.resolv_conf.empty() ? "/etc/resolv.conf" : c.resolv_conf)
                     .value_or(2);  // glibc's RES_DFLRETRY
  return c;
}

std::shared_ptr<channel> resolver::get_channel(int* ares_status) {
  *ares_status = ARES_SUCCESS;
  if (!channel_) channel_ = channel::make(make_config(), ares_status);
  return channel_;
}

void resolver::set_options(const dns_options& o) {
  opts_ = o;
  channel_.reset();  // lookups in flight keep the old one alive until they finish
}

std::string resolver::hosts_path() const {
  if (opts_.hosts_file) return *opts_.hosts_file;
  if (env().hosts_file) return *env().hosts_file;
  return "/etc/hosts";
}

}  // namespace fern::detail::dns
