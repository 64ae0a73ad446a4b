// DNS on c-ares (fern/dns.hpp): filled in by the DNS work of issue 4.
