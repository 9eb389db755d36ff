// Test helper: PROTOCOL.md's hex notation to bytes and back. "A…" (or "A...")
// stands for 16 bytes of 'A', as in the section 8 vectors. Header-only.
#pragma once

#include <cstdint>
#include <sstream>
#include <stdexcept>
#include <string>

namespace siobridge::wire::testing {

inline std::string from_hex(const std::string& text) {
  std::string out;
  std::istringstream in(text);
  std::string token;
  while (in >> token) {
    if (token.size() > 1 && (token.substr(1) == "\u2026" || token.substr(1) == "...")) {
      out.append(16, token[0]);
    } else if (token.size() == 2) {
      out.push_back(static_cast<char>(std::stoi(token, nullptr, 16)));
    } else {
      throw std::invalid_argument("bad hex token: " + token);
    }
  }
  return out;
}

inline std::string to_hex(const std::string& bytes) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  for (unsigned char c : bytes) {
    if (!out.empty()) out.push_back(' ');
    out.push_back(digits[c >> 4]);
    out.push_back(digits[c & 15]);
  }
  return out;
}

}  // namespace siobridge::wire::testing
