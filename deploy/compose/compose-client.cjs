// The compose demo's users: alice on the first chat server, bob on the second.
// Alice says hello until bob hears it through the cluster (the servers may
// still be finding each other), bob answers, and both lines are printed.
//
//   node compose-client.cjs http://chat-1:3000 http://chat-2:3000
const { io } = require("socket.io-client");

const [first, second] = process.argv.slice(2);
const alice = io(first, { auth: { user: "alice", room: "lobby" }, transports: ["websocket"] });
const bob = io(second, { auth: { user: "bob", room: "lobby" }, transports: ["websocket"] });

const done = (code, text) => {
  console.log(text);
  alice.close();
  bob.close();
  process.exit(code);
};
setTimeout(() => done(1, "no message crossed between the servers within 60 s"), 60000);

let attempt = 0;
const hello = setInterval(() => alice.connected && alice.emit("say", `hello from alice (${++attempt})`), 1000);

bob.on("said", ({ from, via, text }) => {
  if (from !== "alice") return;
  clearInterval(hello);
  console.log(`bob, on ${second}, heard "${text}" from ${from} via ${via}`);
  bob.emit("say", "hi alice, bob here");
});
alice.on("said", ({ from, via, text }) => {
  if (from === "bob") done(0, `alice, on ${first}, heard "${text}" from ${from} via ${via}`);
});
