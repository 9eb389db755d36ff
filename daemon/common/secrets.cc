#include "daemon/common/secrets.h"

#include <algorithm>
#include <memory>
#include <vector>

#include "daemon/common/mutex.h"

namespace siobridge {
namespace {

using SecretList = std::vector<std::string>;

// Shorter strings are too likely to be ordinary words and numbers of the
// text: redacting them would mangle it.
constexpr std::size_t kShortest = 6;

// Copy-on-write: redact() runs for every log record and takes only a
// reference to the current list; registration replaces the list.
Mutex registry_mutex;
std::shared_ptr<const SecretList> registry SIOBRIDGE_GUARDED_BY(registry_mutex) =
    std::make_shared<const SecretList>();

std::shared_ptr<const SecretList> current() {
  MutexLock lock(registry_mutex);
  return registry;
}

void add(SecretList& list, std::string secret) {
  if (secret.size() < kShortest) return;
  if (std::find(list.begin(), list.end(), secret) == list.end()) list.push_back(std::move(secret));
  // Longest first: a secret that contains another is replaced whole.
  std::sort(list.begin(), list.end(),
            [](const std::string& a, const std::string& b) { return a.size() > b.size(); });
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Where the password of a connection string lies: [begin, end) in `uri`, or
// begin == end when it has none.
std::pair<std::size_t, std::size_t> password_span(std::string_view uri) {
  const auto scheme = uri.find("://");
  if (scheme == std::string_view::npos) return {0, 0};
  const std::size_t start = scheme + 3;
  // The userinfo ends at the last '@' before the path or options.
  const auto authority_end = uri.find_first_of("/?", start);
  const std::string_view authority =
      uri.substr(start, authority_end == std::string_view::npos ? std::string_view::npos
                                                                : authority_end - start);
  const auto at = authority.rfind('@');
  if (at == std::string_view::npos) return {0, 0};
  const auto colon = authority.substr(0, at).find(':');
  if (colon == std::string_view::npos) return {0, 0};
  return {start + colon + 1, start + at};
}

}  // namespace

void register_secret(std::string_view secret) {
  MutexLock lock(registry_mutex);
  auto list = std::make_shared<SecretList>(*registry);
  add(*list, std::string(secret));
  add(*list, percent_decode(secret));
  registry = std::move(list);
}

void clear_secrets() {
  MutexLock lock(registry_mutex);
  registry = std::make_shared<const SecretList>();
}

std::string redact(std::string_view text) {
  const auto secrets = current();
  std::string out(text);
  for (const auto& secret : *secrets) {
    for (auto at = out.find(secret); at != std::string::npos; at = out.find(secret, at + 3)) {
      out.replace(at, secret.size(), "***");
    }
  }
  return out;
}

std::string redact_uri(std::string_view uri) {
  const auto [begin, end] = password_span(uri);
  if (begin == end) return std::string(uri);
  std::string out(uri.substr(0, begin));
  out += "***";
  out += uri.substr(end);
  return out;
}

std::string uri_password(std::string_view uri) {
  const auto [begin, end] = password_span(uri);
  return percent_decode(uri.substr(begin, end - begin));
}

std::string percent_decode(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '%' && i + 2 < text.size()) {
      const int high = hex_value(text[i + 1]);
      const int low = hex_value(text[i + 2]);
      if (high >= 0 && low >= 0) {
        out.push_back(static_cast<char>(high * 16 + low));
        i += 2;
        continue;
      }
    }
    out.push_back(text[i]);
  }
  return out;
}

}  // namespace siobridge
