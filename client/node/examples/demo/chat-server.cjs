// A small socket.io chat server using the siobridge adapter: the app the demo
// runs twice. Everything it does to the cluster is plain socket.io API.
//
//   SIOBRIDGE_ADDRESS=unix:/tmp/siobridge-0/siobridged.sock PORT=3101 NAME=alpha node chat-server.cjs
const { Server } = require("socket.io");
const { createAdapter } = require("../../dist");

const name = process.env.NAME ?? "chat";
const io = new Server({ adapter: createAdapter({ name, onError: (e) => console.error(`[${name}] ${e.message}`) }) });

io.on("connection", (socket) => {
  const { user, room } = socket.handshake.auth;
  socket.data = { user, server: name };
  if (room) socket.join(room);
  // A chat line goes to everyone in the sender's room, on every server.
  socket.on("say", (text) => io.to(room ?? socket.id).emit("said", { from: user, via: name, text }));
  socket.on("shout", (text) => io.emit("said", { from: user, via: name, text, everyone: true }));
});
io.on("ping-servers", (from, reply) => reply(`${name} got a ping from ${from}`));

// What the demo asks of this server, over IPC.
const actions = {
  serverCount: () => io.of("/").adapter.serverCount(),
  poll: async ({ question }) => io.timeout(3000).emitWithAck("poll", question),
  who: async () =>
    (await io.fetchSockets()).map((s) => ({ id: s.id, user: s.data.user, server: s.data.server, rooms: [...s.rooms] })),
  join: ({ room, newRoom }) => io.in(room).socketsJoin(newRoom),
  announce: ({ room, text }) => io.to(room).emit("said", { from: name, via: name, text }),
  pingServers: () => io.serverSideEmitWithAck("ping-servers", name),
  kick: ({ room }) => io.in(room).disconnectSockets(true),
  rooms: async () => [...(await io.of("/").adapter.allRooms())],
};
process.on("message", async ({ id, action, args }) => {
  try {
    process.send({ id, result: (await actions[action](args ?? {})) ?? null });
  } catch (error) {
    process.send({ id, error: error.message });
  }
});

io.listen(Number(process.env.PORT ?? 0));
process.send?.({ ready: true, port: io.httpServer.address().port });
process.on("SIGTERM", () => io.close(() => process.exit(0)));
