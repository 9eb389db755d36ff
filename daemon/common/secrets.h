// Secrets kept out of what the daemon shows: the MongoDB password never
// reaches a log line, an error, Status or --check-config in clear.
//
// register_secret() records a string (e.g. a password) that redact() replaces
// with "***" wherever it occurs; the logger redacts every record with it, so a
// driver message that quotes a URI cannot leak one either. redact_uri() hides
// the password of a MongoDB connection string by its place.
//
// Thread-safe: registration and redaction may run on any thread.
#pragma once

#include <string>
#include <string_view>

namespace siobridge {

// Registers `secret` (ignored when shorter than 6 characters: too common to
// hide without mangling ordinary text), and its percent-decoded form.
void register_secret(std::string_view secret);
// Forgets every registered secret (for tests, and when a new URI replaces one).
void clear_secrets();
// `text` with every registered secret replaced by "***".
std::string redact(std::string_view text);

// "scheme://user:password@hosts/..." -> "scheme://user:***@hosts/..."; any
// other text is returned as it is.
std::string redact_uri(std::string_view uri);
// The password of "scheme://user:password@hosts/...", percent-decoded; empty
// when there is none.
std::string uri_password(std::string_view uri);
// Percent-decoding (%41 -> A) of a URI component; other text as it is.
std::string percent_decode(std::string_view text);

}  // namespace siobridge
