#include "daemon/bus/mongodb/change_stream_filter.h"

#include "daemon/wire/document.h"

namespace siobridge::bus::mongodb {

wire::OwnedBson change_stream_pipeline(const std::string& own_uid) {
  const std::string extension_target(wire::kSiobridgeTarget);
  return wire::OwnedBson(
      BCON_NEW("pipeline", "[", "{", "$match", "{", "$or", "[", "{", "operationType", "{", "$in",
               "[", "drop", "rename", "dropDatabase", "invalidate", "]", "}", "}", "{",
               "operationType", BCON_UTF8("insert"), "fullDocument.origin", "{", "$ne",
               BCON_UTF8(own_uid.c_str()), "}", "fullDocument.target", "{", "$in", "[", BCON_NULL,
               BCON_UTF8(own_uid.c_str()), BCON_UTF8(extension_target.c_str()), "]", "}", "}",
               // Its own documents that it asked to read back (Document::echo).
               "{", "operationType", BCON_UTF8("insert"), "fullDocument.origin",
               BCON_UTF8(own_uid.c_str()), "fullDocument.echo", BCON_BOOL(true), "}", "]", "}", "}",
               // Only what the watcher reads; _id (the resume token) is kept by the server,
               // clusterTime gives the document's place in the cluster's order.
               "{", "$project", "{", "operationType", BCON_INT32(1), "fullDocument", BCON_INT32(1),
               "clusterTime", BCON_INT32(1), "}", "}", "]"));
}

}  // namespace siobridge::bus::mongodb
