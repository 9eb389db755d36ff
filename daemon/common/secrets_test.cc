// Redaction of secrets: by value wherever they occur (log records), and by
// place in a connection string (--check-config, errors).
#include "daemon/common/secrets.h"

#include <catch2/catch.hpp>

using namespace siobridge;

TEST_CASE("a registered secret is replaced wherever it occurs, also percent-decoded") {
  clear_secrets();
  register_secret("s3cr%40t");
  CHECK(redact("login s3cr%40t failed; again s3cr%40t") == "login *** failed; again ***");
  CHECK(redact("decoded: s3cr@t") == "decoded: ***");
  CHECK(redact("nothing here") == "nothing here");
  clear_secrets();
  CHECK(redact("s3cr@t") == "s3cr@t");
}

TEST_CASE("very short secrets are not registered: they would mangle ordinary text") {
  clear_secrets();
  register_secret("wrong");
  CHECK(redact("the wrong way") == "the wrong way");
}

TEST_CASE("a connection string's password is hidden by its place") {
  CHECK(redact_uri("mongodb://siobridge:pa:ss@db1,db2/?replicaSet=rs0") ==
        "mongodb://siobridge:***@db1,db2/?replicaSet=rs0");
  CHECK(redact_uri("mongodb+srv://u:p%40ss@cluster0.example.net/db") ==
        "mongodb+srv://u:***@cluster0.example.net/db");
  // An '@' in the password (unescaped) still ends at the last '@' of the authority.
  CHECK(redact_uri("mongodb://u:p@ss@host:27017") == "mongodb://u:***@host:27017");
  CHECK(redact_uri("mongodb://user@host/?authSource=admin") ==
        "mongodb://user@host/?authSource=admin");
  CHECK(redact_uri("mongodb://host/?replicaSet=rs0&x=a@b") ==
        "mongodb://host/?replicaSet=rs0&x=a@b");
  CHECK(redact_uri("not a uri") == "not a uri");
  CHECK(uri_password("mongodb://u:p%40ss@host") == "p@ss");
  CHECK(uri_password("mongodb://u@host") == "");
}

TEST_CASE("percent-decoding leaves what is not an escape alone") {
  CHECK(percent_decode("a%2Fb%zz%4") == "a/b%zz%4");
}
