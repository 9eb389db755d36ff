#include "client/cpp/src/client_impl.h"

#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <sstream>

namespace siobridge::client {

std::string default_address() {
  if (getuid() == 0) return "unix:/run/siobridge/siobridged.sock";
  return "unix:/tmp/siobridge-" + std::to_string(getuid()) + "/siobridged.sock";
}

namespace {

std::string target_of(const std::string& address) {
  if (address.empty()) return default_address();
  if (address.rfind("unix:", 0) == 0) return address;
  if (address.front() == '/') return "unix:" + address;
  return address;
}

bool read_pem(const std::string& path, const char* what, std::string* out, grpc::Status* status) {
  std::ifstream in(path);
  if (!in) {
    *status = grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                           std::string(what) + ": cannot read " + path);
    return false;
  }
  std::stringstream buffer;
  buffer << in.rdbuf();
  *out = buffer.str();
  return true;
}

}  // namespace

grpc::Status channel_credentials(const ClientOptions& options,
                                 std::shared_ptr<grpc::ChannelCredentials>* out) {
  const bool any_tls = !options.tls_ca_file.empty() || !options.tls_cert_file.empty() ||
                       !options.tls_key_file.empty();
  if (!any_tls) {
    *out = grpc::InsecureChannelCredentials();
    return grpc::Status::OK;
  }
  const auto invalid = [](const std::string& message) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, message);
  };
  if (target_of(options.address).rfind("unix:", 0) == 0) {
    return invalid("TLS is for a TCP address (host:port), not the Unix socket " + options.address);
  }
  if (options.tls_ca_file.empty()) {
    return invalid(
        "a client certificate needs the CA of the daemon's certificate too (tls_ca_file)");
  }
  if (options.tls_cert_file.empty() != options.tls_key_file.empty()) {
    return invalid("a client certificate and its key go together (tls_cert_file, tls_key_file)");
  }
  grpc::SslCredentialsOptions ssl;
  grpc::Status status;
  if (!read_pem(options.tls_ca_file, "tls_ca_file", &ssl.pem_root_certs, &status)) return status;
  if (!options.tls_cert_file.empty() &&
      (!read_pem(options.tls_cert_file, "tls_cert_file", &ssl.pem_cert_chain, &status) ||
       !read_pem(options.tls_key_file, "tls_key_file", &ssl.pem_private_key, &status))) {
    return status;
  }
  *out = grpc::SslCredentials(ssl);
  return grpc::Status::OK;
}

BridgeClient::Impl::Impl(ClientOptions options, CommandHandler* handler)
    : options_(std::move(options)), handler_(handler), instance_(new_instance()) {
  std::shared_ptr<grpc::ChannelCredentials> credentials;
  setup_ = channel_credentials(options_, &credentials);
  if (!setup_.ok()) credentials = grpc::InsecureChannelCredentials();  // never used for a call
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(64 << 20);
  args.SetMaxSendMessageSize(64 << 20);
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS,
              static_cast<int>(options_.reconnect_min.count()));
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, static_cast<int>(options_.reconnect_max.count()));
  channel_ = grpc::CreateCustomChannel(target_of(options_.address), credentials, args);
  stub_ = pb::Bridge::NewStub(channel_);
  namespaces_.insert(options_.namespaces.begin(), options_.namespaces.end());
  if (options_.attach && setup_.ok()) attach_thread_ = std::thread([this] { run_attach_loop(); });
}

BridgeClient::Impl::~Impl() {
  stopping_ = true;
  {
    MutexLock lock(mutex_);
    if (stream_context_) stream_context_->TryCancel();
  }
  changed_.signal_all();
  if (attach_thread_.joinable()) attach_thread_.join();
}

void BridgeClient::Impl::run_attach_loop() {
  auto backoff = options_.reconnect_min;
  while (!stopping_) {
    const bool welcomed = attach_once();
    if (stopping_) break;
    if (welcomed) backoff = options_.reconnect_min;
    {
      MutexLock lock(mutex_);
      const auto deadline = std::chrono::steady_clock::now() + backoff;
      while (!stopping_ && changed_.wait_until(deadline)) {
      }
    }
    backoff = std::min(options_.reconnect_max, backoff * 2);
  }
}

bool BridgeClient::Impl::attach_once() {
  auto context = std::make_unique<grpc::ClientContext>();
  context->set_wait_for_ready(true);
  auto* raw_context = context.get();
  pb::ServerMessage hello;
  hello.mutable_hello()->set_name(options_.name);
  hello.mutable_hello()->add_features("command_batch");
  {
    MutexLock lock(mutex_);
    for (const auto& ns : namespaces_) hello.mutable_hello()->add_namespaces(ns);
    number_hello(*hello.mutable_hello());
    // Visible to the destructor before Attach() starts: opening a wait-for-ready
    // stream blocks until the daemon answers, and only a cancel ends it when the
    // daemon is gone. The destructor may also have looked before this existed.
    stream_context_ = std::move(context);
    if (stopping_) stream_context_->TryCancel();
  }
  auto stream = stub_->Attach(raw_context);
  bool welcomed = false;
  if (stream->Write(hello)) {
    pb::DaemonMessage message;
    while (stream->Read(&message)) {
      if (message.has_welcome()) {
        {
          MutexLock lock(mutex_);
          ++attach_count_;  // before the attachment is seen (wait_attached)
          attachment_id_ = message.welcome().attachment_id();
          node_uid_ = message.welcome().node_uid();
          stream_ = std::move(stream);
          numbered_welcome(message.welcome());
        }
        welcomed = true;
        changed_.signal_all();
        break;
      }
    }
  }
  if (welcomed) {
    auto* reader = [&] {
      MutexLock lock(mutex_);
      return stream_.get();
    }();
    pb::DaemonMessage message;
    while (reader->Read(&message)) {
      if (message.has_result() || message.has_confirmed()) {
        numbered_answer(message);
        continue;
      }
      if (!handler_) continue;
      if (message.has_command()) {
        handler_->on_command(message.command());
      } else if (message.has_command_batch()) {
        for (const auto& command : message.command_batch().commands())
          handler_->on_command(command);
      }
    }
  }
  std::unique_ptr<grpc::ClientReaderWriter<pb::ServerMessage, pb::DaemonMessage>> finished;
  {
    MutexLock lock(mutex_);
    attachment_id_.clear();
    numbered_stream_ended();
    finished = welcomed ? std::move(stream_) : std::move(stream);
  }
  if (finished) {
    MutexLock write(write_mutex_);
    finished->Finish();
  }
  {
    MutexLock lock(mutex_);
    stream_context_.reset();
  }
  return welcomed;
}

bool BridgeClient::Impl::wait_attached(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  MutexLock lock(mutex_);
  while (attachment_id_.empty()) {
    if (!changed_.wait_until(deadline)) return !attachment_id_.empty();
  }
  return true;
}

std::string BridgeClient::Impl::attachment_id() const {
  MutexLock lock(mutex_);
  return attachment_id_;
}

std::string BridgeClient::Impl::node_uid() const {
  MutexLock lock(mutex_);
  return node_uid_;
}

void BridgeClient::Impl::write(const pb::ServerMessage& message) {
  if (!stream_) return;
  MutexLock write(write_mutex_);
  stream_->Write(message);
}

void BridgeClient::Impl::join_namespace(const std::string& ns) {
  pb::ServerMessage message;
  message.mutable_join_namespace()->set_namespace_(ns);
  MutexLock lock(mutex_);
  namespaces_.insert(ns);
  write(message);  // without a stream, the next Hello lists it
}

void BridgeClient::Impl::leave_namespace(const std::string& ns) {
  pb::ServerMessage message;
  message.mutable_leave_namespace()->set_namespace_(ns);
  MutexLock lock(mutex_);
  namespaces_.erase(ns);
  write(message);
}

void BridgeClient::Impl::reply(const pb::Reply& reply) {
  pb::ServerMessage message;
  *message.mutable_reply() = reply;
  MutexLock lock(mutex_);
  write(message);  // without a stream the daemon forgot the command anyway
}

std::unique_ptr<grpc::ClientContext> BridgeClient::Impl::call_context() const {
  auto context = std::make_unique<grpc::ClientContext>();
  context->set_deadline(std::chrono::system_clock::now() + options_.call_timeout);
  return context;
}

template <typename Reply, typename Call>
Outcome<Reply> BridgeClient::Impl::with_attachment(Call&& call) {
  Outcome<Reply> outcome;
  if (!setup_.ok()) return {setup_, {}};
  for (int attempt = 0; attempt < 2; ++attempt) {
    outcome = Outcome<Reply>{};
    outcome.status = call(attachment_id(), outcome.value);
    const bool stale = outcome.status.error_code() == grpc::StatusCode::FAILED_PRECONDITION &&
                       outcome.status.error_message().find("attach again") != std::string::npos;
    if (!stale || !options_.attach) break;
    // The daemon restarted: wait for the new attachment and try once more.
    {
      const auto deadline = std::chrono::steady_clock::now() + options_.call_timeout;
      MutexLock lock(mutex_);
      const auto old = attachment_id_;
      while ((attachment_id_.empty() || attachment_id_ == old) && !stopping_) {
        if (!changed_.wait_until(deadline)) break;
      }
    }
  }
  return outcome;
}

Outcome<pb::OperationReply> BridgeClient::Impl::broadcast(const pb::Packet& packet,
                                                          const pb::BroadcastOptions& opts) {
  pb::Call call;
  *call.mutable_broadcast()->mutable_packet() = packet;
  *call.mutable_broadcast()->mutable_opts() = opts;
  return numbered(std::move(call), [&] {
    return with_attachment<pb::OperationReply>(
        [&](const std::string& id, pb::OperationReply& reply) {
          pb::BroadcastRequest request;
          request.set_attachment_id(id);
          *request.mutable_packet() = packet;
          *request.mutable_opts() = opts;
          auto context = call_context();
          return stub_->Broadcast(context.get(), request, &reply);
        });
  });
}

Outcome<pb::AckDone> BridgeClient::Impl::broadcast_with_ack(
    const pb::Packet& packet, const pb::BroadcastOptions& opts,
    std::chrono::milliseconds ack_timeout,
    const std::function<void(const pb::AckEvent&)>& on_event) {
  return with_attachment<pb::AckDone>([&](const std::string& id, pb::AckDone& done) {
    pb::BroadcastRequest request;
    request.set_attachment_id(id);
    *request.mutable_packet() = packet;
    *request.mutable_opts() = opts;
    request.set_ack_timeout_ms(static_cast<std::uint32_t>(ack_timeout.count()));
    auto context = call_context();
    auto reader = stub_->BroadcastWithAck(context.get(), request);
    pb::AckEvent event;
    while (reader->Read(&event)) {
      if (event.has_done()) done = event.done();
      if (on_event) on_event(event);
    }
    return reader->Finish();
  });
}

namespace {

pb::RoomsRequest rooms_request(const std::string& attachment, const std::string& ns,
                               const pb::BroadcastOptions& opts,
                               const std::vector<std::string>& rooms) {
  pb::RoomsRequest request;
  request.set_attachment_id(attachment);
  request.set_namespace_(ns);
  *request.mutable_opts() = opts;
  for (const auto& r : rooms) request.add_rooms(r);
  return request;
}

}  // namespace

Outcome<pb::OperationReply> BridgeClient::Impl::add_sockets(const std::string& ns,
                                                            const pb::BroadcastOptions& opts,
                                                            const std::vector<std::string>& rooms) {
  pb::Call call;
  *call.mutable_add_sockets() = rooms_request("", ns, opts, rooms);
  return numbered(std::move(call), [&] {
    return with_attachment<pb::OperationReply>(
        [&](const std::string& id, pb::OperationReply& reply) {
          auto context = call_context();
          return stub_->AddSockets(context.get(), rooms_request(id, ns, opts, rooms), &reply);
        });
  });
}

Outcome<pb::OperationReply> BridgeClient::Impl::del_sockets(const std::string& ns,
                                                            const pb::BroadcastOptions& opts,
                                                            const std::vector<std::string>& rooms) {
  pb::Call call;
  *call.mutable_del_sockets() = rooms_request("", ns, opts, rooms);
  return numbered(std::move(call), [&] {
    return with_attachment<pb::OperationReply>(
        [&](const std::string& id, pb::OperationReply& reply) {
          auto context = call_context();
          return stub_->DelSockets(context.get(), rooms_request(id, ns, opts, rooms), &reply);
        });
  });
}

Outcome<pb::OperationReply> BridgeClient::Impl::disconnect_sockets(const std::string& ns,
                                                                   const pb::BroadcastOptions& opts,
                                                                   bool close) {
  pb::DisconnectRequest request;
  request.set_namespace_(ns);
  *request.mutable_opts() = opts;
  request.set_close(close);
  pb::Call call;
  *call.mutable_disconnect_sockets() = request;
  return numbered(std::move(call), [&] {
    return with_attachment<pb::OperationReply>(
        [&](const std::string& id, pb::OperationReply& reply) {
          request.set_attachment_id(id);
          auto context = call_context();
          return stub_->DisconnectSockets(context.get(), request, &reply);
        });
  });
}

Outcome<pb::FetchSocketsReply> BridgeClient::Impl::fetch_sockets(const std::string& ns,
                                                                 const pb::BroadcastOptions& opts) {
  return with_attachment<pb::FetchSocketsReply>(
      [&](const std::string& id, pb::FetchSocketsReply& reply) {
        pb::QueryRequest request;
        request.set_attachment_id(id);
        request.set_namespace_(ns);
        *request.mutable_opts() = opts;
        auto context = call_context();
        return stub_->FetchSockets(context.get(), request, &reply);
      });
}

Outcome<pb::AllRoomsReply> BridgeClient::Impl::all_rooms(const std::string& ns,
                                                         const pb::BroadcastOptions& opts) {
  return with_attachment<pb::AllRoomsReply>([&](const std::string& id, pb::AllRoomsReply& reply) {
    pb::QueryRequest request;
    request.set_attachment_id(id);
    request.set_namespace_(ns);
    *request.mutable_opts() = opts;
    auto context = call_context();
    return stub_->AllRooms(context.get(), request, &reply);
  });
}

Outcome<pb::ServerCountReply> BridgeClient::Impl::server_count(const std::string& ns) {
  Outcome<pb::ServerCountReply> outcome;
  if (!setup_.ok()) return {setup_, {}};
  pb::ServerCountRequest request;
  request.set_namespace_(ns);
  auto context = call_context();
  outcome.status = stub_->ServerCount(context.get(), request, &outcome.value);
  return outcome;
}

Outcome<pb::ServerSideEmitReply> BridgeClient::Impl::server_side_emit(
    const std::string& ns, const std::string& payload, bool wants_ack,
    std::chrono::milliseconds timeout) {
  return with_attachment<pb::ServerSideEmitReply>(
      [&](const std::string& id, pb::ServerSideEmitReply& reply) {
        pb::ServerSideEmitRequest request;
        request.set_attachment_id(id);
        request.set_namespace_(ns);
        request.set_payload(payload);
        request.set_wants_ack(wants_ack);
        request.set_timeout_ms(static_cast<std::uint32_t>(timeout.count()));
        auto context = call_context();
        return stub_->ServerSideEmit(context.get(), request, &reply);
      });
}

Outcome<pb::StatusReply> BridgeClient::Impl::status() {
  if (!setup_.ok()) return {setup_, {}};
  Outcome<pb::StatusReply> outcome;
  auto context = call_context();
  outcome.status = stub_->Status(context.get(), pb::StatusRequest{}, &outcome.value);
  return outcome;
}

// ---- BridgeClient: forwards to its Impl ----

BridgeClient::BridgeClient(ClientOptions options, CommandHandler* handler)
    : impl_(std::make_unique<Impl>(std::move(options), handler)) {}
BridgeClient::~BridgeClient() = default;

bool BridgeClient::wait_attached(std::chrono::milliseconds timeout) {
  return impl_->wait_attached(timeout);
}
std::string BridgeClient::attachment_id() const {
  return impl_->attachment_id();
}
std::string BridgeClient::node_uid() const {
  return impl_->node_uid();
}
int BridgeClient::attach_count() const {
  return impl_->attach_count();
}
std::uint64_t BridgeClient::resent() const {
  return impl_->resent();
}
std::size_t BridgeClient::kept() const {
  return impl_->kept();
}
void BridgeClient::join_namespace(const std::string& ns) {
  impl_->join_namespace(ns);
}
void BridgeClient::leave_namespace(const std::string& ns) {
  impl_->leave_namespace(ns);
}
void BridgeClient::reply(const pb::Reply& reply) {
  impl_->reply(reply);
}

Outcome<pb::OperationReply> BridgeClient::broadcast(const pb::Packet& packet,
                                                    const pb::BroadcastOptions& opts) {
  return impl_->broadcast(packet, opts);
}
Outcome<pb::AckDone> BridgeClient::broadcast_with_ack(
    const pb::Packet& packet, const pb::BroadcastOptions& opts,
    std::chrono::milliseconds ack_timeout,
    const std::function<void(const pb::AckEvent&)>& on_event) {
  return impl_->broadcast_with_ack(packet, opts, ack_timeout, on_event);
}
Outcome<pb::OperationReply> BridgeClient::add_sockets(const std::string& ns,
                                                      const pb::BroadcastOptions& opts,
                                                      const std::vector<std::string>& rooms) {
  return impl_->add_sockets(ns, opts, rooms);
}
Outcome<pb::OperationReply> BridgeClient::del_sockets(const std::string& ns,
                                                      const pb::BroadcastOptions& opts,
                                                      const std::vector<std::string>& rooms) {
  return impl_->del_sockets(ns, opts, rooms);
}
Outcome<pb::OperationReply> BridgeClient::disconnect_sockets(const std::string& ns,
                                                             const pb::BroadcastOptions& opts,
                                                             bool close) {
  return impl_->disconnect_sockets(ns, opts, close);
}
Outcome<pb::FetchSocketsReply> BridgeClient::fetch_sockets(const std::string& ns,
                                                           const pb::BroadcastOptions& opts) {
  return impl_->fetch_sockets(ns, opts);
}
Outcome<pb::AllRoomsReply> BridgeClient::all_rooms(const std::string& ns,
                                                   const pb::BroadcastOptions& opts) {
  return impl_->all_rooms(ns, opts);
}
Outcome<pb::ServerCountReply> BridgeClient::server_count(const std::string& ns) {
  return impl_->server_count(ns);
}
Outcome<pb::ServerSideEmitReply> BridgeClient::server_side_emit(const std::string& ns,
                                                                const std::string& payload,
                                                                bool wants_ack,
                                                                std::chrono::milliseconds timeout) {
  return impl_->server_side_emit(ns, payload, wants_ack, timeout);
}
Outcome<pb::StatusReply> BridgeClient::status() {
  return impl_->status();
}
pb::Bridge::Stub& BridgeClient::stub() {
  return impl_->stub();
}
std::shared_ptr<grpc::Channel> BridgeClient::channel() const {
  return impl_->channel();
}

}  // namespace siobridge::client
