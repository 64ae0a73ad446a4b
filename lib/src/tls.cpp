// TLS on OpenSSL (fern/tls.hpp): filled in by the TLS work of issue 4.
