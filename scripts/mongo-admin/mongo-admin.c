/* mongo-admin: the few server commands the test launcher needs, since Debian
 * ships no MongoDB shell.
 *
 *   mongo-admin PORT ping              exit 0 when the server answers
 *   mongo-admin PORT ready SECONDS     initiate replica set rs0 if needed, wait
 *                                      until this node is a writable primary
 *   mongo-admin PORT shutdown          clean shutdown ({shutdown: 1, force})
 *   mongo-admin PORT state             print this member's replica-set state
 *                                      (PRIMARY, SECONDARY, STARTUP2, ...;
 *                                      NOT-INITIATED; UNREACHABLE, exit 1)
 *   mongo-admin PORT initiate SET PORT...
 *                                      replSetInitiate of a set with these
 *                                      members (exit 0 when already initiated)
 *   mongo-admin PORT stepdown SECONDS  replSetStepDown: this primary steps down
 *                                      and is not electable for SECONDS
 *   mongo-admin PORT command DB JSON   run the command JSON (extended JSON) on
 *                                      database DB; print the reply as JSON
 *   mongo-admin PORT wait-user SECONDS wait until the credentials below log in
 *
 * Every command talks to 127.0.0.1:PORT with directConnection=true, as the
 * user MONGO_ADMIN_USER with the password MONGO_ADMIN_PASSWORD (authSource
 * admin) when they are set, else without credentials. */
#include <mongoc/mongoc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static mongoc_client_t* connect_to(const char* port) {
  char uri[256];
  snprintf(uri, sizeof uri,
           "mongodb://127.0.0.1:%s/?directConnection=true&serverSelectionTimeoutMS=2000"
           "&connectTimeoutMS=2000&serverSelectionTryOnce=true",
           port);
  bson_error_t error;
  mongoc_uri_t* parsed = mongoc_uri_new_with_error(uri, &error);
  if (!parsed) {
    fprintf(stderr, "mongo-admin: bad uri: %s\n", error.message);
    exit(2);
  }
  const char* user = getenv("MONGO_ADMIN_USER");
  const char* password = getenv("MONGO_ADMIN_PASSWORD");
  if (user && *user) {
    /* Set apart from the URI text: a password needs no escaping this way. */
    mongoc_uri_set_username(parsed, user);
    mongoc_uri_set_password(parsed, password ? password : "");
    mongoc_uri_set_auth_source(parsed, "admin");
  }
  mongoc_client_t* client = mongoc_client_new_from_uri(parsed);
  mongoc_uri_destroy(parsed);
  mongoc_client_set_error_api(client, MONGOC_ERROR_API_VERSION_2);
  return client;
}

static bool run(mongoc_client_t* client, bson_t* command, bson_t* reply, bson_error_t* error) {
  bool ok = mongoc_client_command_simple(client, "admin", command, NULL, reply, error);
  bson_destroy(command);
  return ok;
}

static int ping(mongoc_client_t* client) {
  bson_t reply;
  bson_error_t error;
  bool ok = run(client, BCON_NEW("ping", BCON_INT32(1)), &reply, &error);
  bson_destroy(&reply);
  if (!ok) fprintf(stderr, "mongo-admin: ping: %s\n", error.message);
  return ok ? 0 : 1;
}

static bool is_writable_primary(mongoc_client_t* client, char* why, size_t why_len) {
  bson_t reply;
  bson_error_t error;
  bool ok = run(client, BCON_NEW("hello", BCON_INT32(1)), &reply, &error);
  bool primary = false;
  if (!ok) {
    snprintf(why, why_len, "hello failed: %s", error.message);
  } else {
    bson_iter_t it;
    primary = bson_iter_init_find(&it, &reply, "isWritablePrimary") && bson_iter_as_bool(&it);
    if (!primary) snprintf(why, why_len, "not yet a writable primary");
  }
  bson_destroy(&reply);
  return primary;
}

static int ready(mongoc_client_t* client, const char* port, int seconds) {
  char why[600] = "no answer";
  for (int tenth = 0; tenth < seconds * 10; ++tenth) {
    if (is_writable_primary(client, why, sizeof why)) return 0;
    bson_t reply;
    bson_error_t error;
    bson_t* status = BCON_NEW("replSetGetStatus", BCON_INT32(1));
    bool ok = run(client, status, &reply, &error);
    bson_destroy(&reply);
    /* With access control on and no user yet, replSetGetStatus is refused
     * (Unauthorized) where replSetInitiate is let in (the localhost exception). */
    if (!ok && (error.code == 94 /* NotYetInitialized */ || error.code == 13 /* Unauthorized */)) {
      char host[64];
      snprintf(host, sizeof host, "127.0.0.1:%s", port);
      bson_t* initiate =
          BCON_NEW("replSetInitiate", "{", "_id", BCON_UTF8("rs0"), "members", "[", "{", "_id",
                   BCON_INT32(0), "host", BCON_UTF8(host), "}", "]", "}");
      static bool reported = false;
      if (!run(client, initiate, &reply, &error) && error.code != 23 /* AlreadyInitialized */ &&
          !reported) {
        fprintf(stderr, "mongo-admin: replSetInitiate: %s\n", error.message);
        reported = true;
      }
      bson_destroy(&reply);
    }
    usleep(100 * 1000);
  }
  fprintf(stderr, "mongo-admin: not a writable primary after %d s: %s\n", seconds, why);
  return 1;
}

static int state(mongoc_client_t* client) {
  bson_t reply;
  bson_error_t error;
  bool ok = run(client, BCON_NEW("replSetGetStatus", BCON_INT32(1)), &reply, &error);
  if (!ok) {
    bson_destroy(&reply);
    if (error.code == 94 /* NotYetInitialized */) {
      puts("NOT-INITIATED");
      return 0;
    }
    puts("UNREACHABLE");
    fprintf(stderr, "mongo-admin: replSetGetStatus: %s\n", error.message);
    return 1;
  }
  const char* found = "UNKNOWN";
  bson_iter_t it, members, member;
  if (bson_iter_init_find(&it, &reply, "members") && BSON_ITER_HOLDS_ARRAY(&it) &&
      bson_iter_recurse(&it, &members)) {
    while (bson_iter_next(&members)) {
      if (!BSON_ITER_HOLDS_DOCUMENT(&members) || !bson_iter_recurse(&members, &member)) continue;
      bool self = false;
      const char* name = NULL;
      while (bson_iter_next(&member)) {
        if (strcmp(bson_iter_key(&member), "self") == 0) self = bson_iter_as_bool(&member);
        if (strcmp(bson_iter_key(&member), "stateStr") == 0 && BSON_ITER_HOLDS_UTF8(&member))
          name = bson_iter_utf8(&member, NULL);
      }
      if (self && name) {
        found = name;
        break;
      }
    }
  }
  puts(found);
  bson_destroy(&reply);
  return 0;
}

static int initiate(mongoc_client_t* client, const char* set, int count, char** ports) {
  bson_t command = BSON_INITIALIZER, config, members;
  BSON_APPEND_DOCUMENT_BEGIN(&command, "replSetInitiate", &config);
  BSON_APPEND_UTF8(&config, "_id", set);
  BSON_APPEND_ARRAY_BEGIN(&config, "members", &members);
  for (int i = 0; i < count; ++i) {
    char key[16], host[64];
    snprintf(key, sizeof key, "%d", i);
    snprintf(host, sizeof host, "127.0.0.1:%s", ports[i]);
    bson_t member;
    BSON_APPEND_DOCUMENT_BEGIN(&members, key, &member);
    BSON_APPEND_INT32(&member, "_id", i);
    BSON_APPEND_UTF8(&member, "host", host);
    bson_append_document_end(&members, &member);
  }
  bson_append_array_end(&config, &members);
  bson_append_document_end(&command, &config);
  bson_t reply;
  bson_error_t error;
  bool ok = run(client, bson_copy(&command), &reply, &error);
  bson_destroy(&command);
  bson_destroy(&reply);
  if (!ok && error.code != 23 /* AlreadyInitialized */) {
    fprintf(stderr, "mongo-admin: replSetInitiate: %s\n", error.message);
    return 1;
  }
  return 0;
}

static int step_down(mongoc_client_t* client, int seconds) {
  bson_t reply;
  bson_error_t error;
  /* The primary closes its connections as it steps down: a network error after
   * the command was sent is the normal outcome on older servers. */
  bool ok = run(client, BCON_NEW("replSetStepDown", BCON_INT32(seconds)), &reply, &error);
  bson_destroy(&reply);
  if (!ok && error.domain != MONGOC_ERROR_STREAM) {
    fprintf(stderr, "mongo-admin: replSetStepDown: %s\n", error.message);
    return 1;
  }
  return 0;
}

static int shutdown_server(mongoc_client_t* client) {
  bson_t reply;
  bson_error_t error;
  /* The server closes the connection while answering: an error here is the normal case. */
  run(client, BCON_NEW("shutdown", BCON_INT32(1), "force", BCON_BOOL(true)), &reply, &error);
  bson_destroy(&reply);
  return 0;
}

static int command(mongoc_client_t* client, const char* db, const char* json) {
  bson_error_t error;
  bson_t* parsed = bson_new_from_json((const uint8_t*)json, -1, &error);
  if (!parsed) {
    fprintf(stderr, "mongo-admin: the command is not JSON: %s\n", error.message);
    return 2;
  }
  bson_t reply;
  bool ok = mongoc_client_command_simple(client, db, parsed, NULL, &reply, &error);
  bson_destroy(parsed);
  if (ok) {
    char* text = bson_as_relaxed_extended_json(&reply, NULL);
    puts(text);
    bson_free(text);
  } else {
    fprintf(stderr, "mongo-admin: %s (code %u)\n", error.message, error.code);
  }
  bson_destroy(&reply);
  return ok ? 0 : 1;
}

/* After createUser the user may take a moment to be usable on a new set. */
static int wait_user(mongoc_client_t* client, int seconds) {
  bson_error_t error;
  for (int tenth = 0; tenth < seconds * 10; ++tenth) {
    bson_t reply;
    bool ok = run(client, BCON_NEW("listDatabases", BCON_INT32(1), "nameOnly", BCON_BOOL(true)),
                  &reply, &error);
    bson_destroy(&reply);
    if (ok) return 0;
    usleep(100 * 1000);
  }
  fprintf(stderr, "mongo-admin: cannot log in within %d s: %s\n", seconds, error.message);
  return 1;
}

/* The driver's own warnings (e.g. that a client without credentials could not
 * end its sessions on a server with access control) are noise here. */
static void quiet_log(mongoc_log_level_t level, const char* domain, const char* message,
                      void* data) {
  (void)data;
  if (level <= MONGOC_LOG_LEVEL_ERROR) fprintf(stderr, "mongo-admin: %s: %s\n", domain, message);
}

int main(int argc, char** argv) {
  if (argc < 3) {
    fprintf(stderr,
            "usage: mongo-admin PORT ping|ready SECONDS|shutdown|state|initiate SET PORT...|"
            "stepdown SECONDS|command DB JSON|wait-user SECONDS\n");
    return 2;
  }
  mongoc_init();
  mongoc_log_set_handler(quiet_log, NULL);
  mongoc_client_t* client = connect_to(argv[1]);
  int rc = 2;
  if (strcmp(argv[2], "ping") == 0)
    rc = ping(client);
  else if (strcmp(argv[2], "ready") == 0)
    rc = ready(client, argv[1], argc > 3 ? atoi(argv[3]) : 60);
  else if (strcmp(argv[2], "shutdown") == 0)
    rc = shutdown_server(client);
  else if (strcmp(argv[2], "state") == 0)
    rc = state(client);
  else if (strcmp(argv[2], "initiate") == 0 && argc > 4)
    rc = initiate(client, argv[3], argc - 4, argv + 4);
  else if (strcmp(argv[2], "stepdown") == 0)
    rc = step_down(client, argc > 3 ? atoi(argv[3]) : 10);
  else if (strcmp(argv[2], "command") == 0 && argc == 5)
    rc = command(client, argv[3], argv[4]);
  else if (strcmp(argv[2], "wait-user") == 0)
    rc = wait_user(client, argc > 3 ? atoi(argv[3]) : 30);
  else
    fprintf(stderr, "mongo-admin: unknown command %s\n", argv[2]);
  mongoc_client_destroy(client);
  mongoc_cleanup();
  return rc;
}
